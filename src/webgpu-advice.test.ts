import { describe, expect, it } from 'vitest';
import { adviceFor, guessBrowser } from './webgpu-advice';

const UA = {
  chromeLinux:
    'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36',
  oldChromeWindows:
    'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/110.0.0.0 Safari/537.36',
  edge: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0.0.0 Safari/537.36 Edg/140.0.0.0',
  firefox: 'Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0',
  safari:
    'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.2 Safari/605.1.15',
};

describe('guessBrowser', () => {
  it.each([
    [UA.chromeLinux, { name: 'chrome', major: 156, os: 'linux' }],
    [UA.oldChromeWindows, { name: 'chrome', major: 110, os: 'windows' }],
    [UA.edge, { name: 'edge', major: 140, os: 'windows' }],
    [UA.firefox, { name: 'firefox', major: 140, os: 'linux' }],
    [UA.safari, { name: 'safari', major: 18, os: 'mac' }],
  ])('reads %s', (ua, expected) => {
    expect(guessBrowser(ua)).toEqual(expected);
  });
});

describe('adviceFor', () => {
  const noApi = { available: false, reason: 'no-api', detail: 'navigator.gpu is missing' } as const;

  it('says nothing when WebGPU works', () => {
    const report = {
      available: true,
      adapter: {
        vendor: 'v',
        architecture: 'a',
        device: 'd',
        description: '',
        shaderF16: true,
        maxBufferSize: 1,
        maxStorageBufferBindingSize: 1,
        features: [],
      },
    } as const;
    expect(adviceFor(report, UA.chromeLinux)).toBeNull();
  });

  it('tells an old Chrome to update and names the version it needs', () => {
    const advice = adviceFor(noApi, UA.oldChromeWindows);
    expect(advice?.steps.join(' ')).toMatch(/113 or newer \(you have 110\)/);
  });

  it('gives the Linux flag to Chrome on Linux', () => {
    expect(adviceFor(noApi, UA.chromeLinux)?.steps.join(' ')).toMatch(/enable-unsafe-webgpu/);
  });

  it('tells Firefox where WebGPU is on by default and how to enable it elsewhere', () => {
    expect(adviceFor(noApi, UA.firefox)?.steps.join(' ')).toMatch(/dom\.webgpu\.enabled/);
  });

  it('separates a missing adapter from a missing API', () => {
    const advice = adviceFor({ available: false, reason: 'no-adapter', detail: '' }, UA.chromeLinux);
    expect(advice?.title).toBe('No WebGPU adapter found');
    expect(advice?.steps.join(' ')).toMatch(/chrome:\/\/gpu/);
  });

  it('asks for https when the page is not a secure context', () => {
    const advice = adviceFor({ available: false, reason: 'insecure-context', detail: '' }, UA.chromeLinux);
    expect(advice?.steps.join(' ')).toMatch(/https:\/\//);
  });
});
