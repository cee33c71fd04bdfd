/**
 * Expands `${VAR}` and `${VAR:-default}` in every string of a parsed config tree. We expand after
 * parsing, not in the raw text, so an environment value can never inject YAML structure. A string
 * that was only a reference and expands to a number or boolean becomes one (`port: ${PORT:-8080}`).
 *
 * Only upper-case names are environment variables (`${PORT}`, `${JWT_SECRET}`): lower-case ones
 * such as `${consumer}` or `${params.id}` are left for plugins, whose templates (transform) use them
 * per request. `$${...}` is a literal `${...}` whatever the name.
 */
const ref = /\$(\$?)\{([A-Z_][A-Z0-9_]*)(?::-([^}]*))?\}|\$\$\{/g;
const whole = /^\$\{([A-Z_][A-Z0-9_]*)(?::-([^}]*))?\}$/;

export interface ExpandProblem { path: string; message: string }

export function expandEnv(tree: unknown, env: NodeJS.ProcessEnv, problems: ExpandProblem[], path = ""): unknown {
  if (typeof tree === "string") {
    if (!tree.includes("${")) return tree;
    const isWhole = whole.test(tree);
    const out = tree.replace(ref, (m, escaped: string | undefined, name: string | undefined, def: string | undefined) => {
      if (name === undefined) return "${"; // $${ -> ${
      if (escaped) return m.slice(1); // $${VAR} -> ${VAR}
      const v = env[name];
      // As in the shell: `:-` falls back when the variable is unset or empty; a plain ${VAR} that
      // is set to "" expands to "" (the user set it), only an unset one is a problem.
      if (def !== undefined) return v === undefined || v === "" ? def : v;
      if (v !== undefined) return v;
      problems.push({ path, message: `environment variable ${name} is not set (write \${${name}:-default} to give a default)` });
      return "";
    });
    if (isWhole) {
      if (/^-?[0-9]+(\.[0-9]+)?$/.test(out)) return Number(out);
      if (out === "true") return true;
      if (out === "false") return false;
    }
    return out;
  }
  if (Array.isArray(tree)) return tree.map((v, i) => expandEnv(v, env, problems, `${path}[${i}]`));
  if (tree && typeof tree === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(tree)) out[k] = expandEnv(v, env, problems, path ? `${path}.${k}` : k);
    return out;
  }
  return tree;
}
