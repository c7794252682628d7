#!/usr/bin/env node
import { pluginMain } from "../pkg/skel.ts";
import { bridge } from "./plugin.ts";

await pluginMain(bridge);
