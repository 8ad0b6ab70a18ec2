/**
 * Figure 12's follower, in its own process with the CLI's flags: runs the CLI's `main()` with
 * the given arguments (a `snapshot --follow`) and, once SIGTERM has made it publish and return,
 * prints this process's CPU seconds (user + system, start-up included) to stderr as
 * `@@follow {"code":0,"cpuS":1.23}`.
 *
 * @module
 */
import process from "node:process";
import { main } from "../cli.ts";

const code = await main(Deno.args);
const { user, system } = process.cpuUsage();
console.error(`@@follow ${JSON.stringify({ code, cpuS: (user + system) / 1e6 })}`);
