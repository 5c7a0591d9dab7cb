import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ConfigError, ConfigSchema, loadConfig } from './config.ts';

describe('config', () => {
  it('documents every setting in the README with its default', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    for (const [key, schema] of Object.entries(ConfigSchema.properties)) {
      const def = (schema as { default?: unknown }).default;
      const cell = def === undefined ? '`(unset)`' : `\`${def === '' ? '""' : String(def)}\``;
      expect(readme, key).toMatch(new RegExp(`\\| \`${key}\` \\| ${cell.replace(/[()]/g, '\\$&')} \\|`));
    }
  });

  it('lists every invalid variable at once', () => {
    let error: unknown = null;
    try {
      loadConfig({ PORT: 'x', SANDBOX_CGROUPS: 'sometimes', JS_WORKERS: '-1' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems;
    expect(problems.map((p) => p.split('=')[0]).sort()).toEqual(['JS_WORKERS', 'PORT', 'SANDBOX_CGROUPS']);
  });
});
