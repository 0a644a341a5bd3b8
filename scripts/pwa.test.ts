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

  it('allows the listed origins and, with Hub repo ids, the Hub and its content hosts, in connect-src only', () => {
    const policy = contentSecurityPolicy(
      modelOriginsFromEnv({ VITE_HUB_IDS: 'true', VITE_MODEL_ORIGINS: 'https://models.example.org' }),
    );
    expect(policy).toContain(
      "connect-src 'self' https://models.example.org https://huggingface.co https://*.huggingface.co https://*.hf.co;",
    );
    expect(policy.replace(/connect-src [^;]*;/, '')).not.toMatch(/example\.org|huggingface|hf\.co/);
  });

  it('stops the build on a listed value that is not an origin', () => {
    expect(() => modelOriginsFromEnv({ VITE_MODEL_ORIGINS: "https://ok.example 'unsafe-eval'" })).toThrow(
      /VITE_MODEL_ORIGINS: "'unsafe-eval'" is not an origin/,
    );
  });
});
