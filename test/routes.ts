/** Parses Fastify's printRoutes tree ("├── /a (GET)" / "│   └── /:id (PUT)") into method + full path. */
export function routesFromTree(tree: string): { method: string; path: string }[] {
  const out: { method: string; path: string }[] = [];
  const stack: string[] = [];
  for (const line of tree.split('\n')) {
    const m = /^((?:│ {3}| {4})*)[├└]── (\S+)(?: \(([^)]+)\))?/.exec(line);
    if (!m) continue;
    stack.length = m[1]!.length / 4;
    stack.push(m[2]!);
    if (!m[3]) continue;
    for (const method of m[3].split(', ')) out.push({ method, path: stack.join('') });
  }
  return out;
}
