/** Weir's programmatic API: start a runtime from a config file, or load and check configs. */
export { WeirRuntime, VERSION, type StartOptions } from "./server/runtime.js";
export { loadConfigFile, parseConfigText } from "./config/loader.js";
export { checkConfig } from "./config/compile.js";
export type { WeirConfig } from "./config/schema.js";
export { ConfigError, WeirError, ErrorCodes, type ConfigProblem } from "./errors.js";
