import { describe, expect, it } from 'vitest';
import { contentSecurityPolicy, modelOriginsFromEnv } from './pwa';

describe('contentSecurityPolicy', () => {
  it('allows only the page’s origin, wasm compilation and blob: images by default', () => {
    const policy = contentSecurityPolicy();
    expect(policy).toContain("default-src 'self'");
    expect(policy).toContain("script-src 'self' 'wasm-unsafe-eval'");
    expect(policy).toContain("connect-src 'self';");
    expect(policy).not.toMatch(/'unsafe-inline'|'unsafe-eval'|\*/);
  });

  it('adds the model source origin to connect-src only', () => {
    const [origin] = modelOriginsFromEnv({
      VITE_MODEL_URL: 'https://models.example.org/kandinsky-2.2/fp16/',
    });
    expect(origin).toBe('https://models.example.org');
    const policy = contentSecurityPolicy(origin ? [origin] : []);
    expect(policy).toContain("connect-src 'self' https://models.example.org;");
    expect(policy.match(/models\.example\.org/g)).toHaveLength(1);
  });

  it('ignores a relative or missing model URL (same origin is already allowed)', () => {
    expect(modelOriginsFromEnv({ VITE_MODEL_URL: './models/tiny/' })).toEqual([]);
    expect(modelOriginsFromEnv({})).toEqual([]);
  });
});
