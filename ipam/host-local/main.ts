#!/usr/bin/env node
import { pluginMain } from "../../cni-plugins/pkg/skel.ts";
import { hostLocal } from "./plugin.ts";

await pluginMain(hostLocal);
