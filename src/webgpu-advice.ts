import type { GpuReport } from '../workers/api';

export interface Advice {
  readonly title: string;
  readonly steps: readonly string[];
}

interface BrowserGuess {
  readonly name: 'chrome' | 'edge' | 'firefox' | 'safari' | 'other';
  readonly major: number;
  readonly os: 'windows' | 'mac' | 'linux' | 'android' | 'ios' | 'chromeos' | 'other';
}

export function guessBrowser(userAgent: string): BrowserGuess {
  const os: BrowserGuess['os'] = /Android/.test(userAgent)
    ? 'android'
    : /iPhone|iPad|iPod/.test(userAgent)
      ? 'ios'
      : /CrOS/.test(userAgent)
        ? 'chromeos'
        : /Windows/.test(userAgent)
          ? 'windows'
          : /Mac OS X|Macintosh/.test(userAgent)
            ? 'mac'
            : /Linux/.test(userAgent)
              ? 'linux'
              : 'other';
  const version = (pattern: RegExp): number => Number(pattern.exec(userAgent)?.[1] ?? 0);
  if (/Edg\//.test(userAgent)) return { name: 'edge', major: version(/Edg\/(\d+)/), os };
  if (/Firefox\//.test(userAgent)) return { name: 'firefox', major: version(/Firefox\/(\d+)/), os };
  if (/Chrome\//.test(userAgent)) return { name: 'chrome', major: version(/Chrome\/(\d+)/), os };
  if (/Safari\//.test(userAgent)) return { name: 'safari', major: version(/Version\/(\d+)/), os };
  return { name: 'other', major: 0, os };
}

/** What a person can do to get WebGPU working, given why it isn't and which browser they use. */
export function adviceFor(report: GpuReport, userAgent: string): Advice | null {
  if (report.available) return null;
  if (report.reason === 'insecure-context') {
    return {
      title: 'This page is not a secure context',
      steps: ['Open the app over https:// (or from localhost when running it yourself).'],
    };
  }
  const browser = guessBrowser(userAgent);
  const steps: string[] = [];
  if (report.reason === 'no-adapter') {
    steps.push('Your browser supports WebGPU but found no usable GPU adapter.');
    steps.push(
      'Update your graphics driver, and check that hardware acceleration is on in the browser settings.',
    );
    if (browser.name === 'chrome' || browser.name === 'edge') {
      steps.push('Open chrome://gpu to see whether WebGPU is blocklisted for your GPU.');
      if (browser.os === 'linux') {
        steps.push('On Linux, start the browser with --enable-unsafe-webgpu --enable-features=Vulkan.');
      }
    }
    return { title: 'No WebGPU adapter found', steps };
  }
  switch (browser.name) {
    case 'chrome':
    case 'edge':
      if (browser.major < 113)
        steps.push(`Update your browser: WebGPU needs version 113 or newer (you have ${browser.major}).`);
      if (browser.os === 'linux') {
        steps.push(
          'On Linux, enable chrome://flags/#enable-unsafe-webgpu, or start with --enable-unsafe-webgpu --enable-features=Vulkan.',
        );
      }
      if (browser.os === 'android' && browser.major < 121)
        steps.push('On Android, WebGPU needs Chrome 121 or newer.');
      break;
    case 'firefox':
      steps.push(
        'Firefox enables WebGPU by default from version 141 on Windows; elsewhere set dom.webgpu.enabled to true in about:config, or use a recent Chrome or Edge.',
      );
      break;
    case 'safari':
      steps.push(
        'Safari enables WebGPU from Safari 26 (macOS 26, iOS 26); on older versions enable it under Develop › Feature Flags, or use a recent Chrome or Edge.',
      );
      break;
    default:
      steps.push('Use a recent Chrome or Edge (version 113 or newer), which enable WebGPU by default.');
  }
  if (steps.length === 0) steps.push('Check that hardware acceleration is on in the browser settings.');
  return { title: 'This browser does not expose WebGPU', steps };
}
