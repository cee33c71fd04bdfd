/** Weir's version, as `weir --version` and `GET /status` report it. */
export const VERSION = "0.1.0";
