#!/usr/bin/env node
import { pluginMain } from "../pkg/skel.ts";
import { portmap } from "./plugin.ts";

await pluginMain(portmap);
