#!/usr/bin/env node
import { pluginMain } from "../pkg/skel.ts";
import { loopback } from "./plugin.ts";

await pluginMain(loopback);
