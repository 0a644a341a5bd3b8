/**
 * Where model sets may come from, decided once at build time and read the same way by the build's
 * CSP (scripts/pwa.ts), the app's source input, the worker's store and the CLI: a manifest URL, a
 * Hugging Face Hub repo id (`owner/name`, `owner/name@revision`) resolved to the Hub's file URLs,
 * and the list of origins a build may download from.
 */

/** The Hub's endpoint when VITE_HF_ENDPOINT (or the CLI's HF_ENDPOINT) is not set. */
export const DEFAULT_HUB_ENDPOINT = 'https://huggingface.co';

/**
 * Where huggingface.co's file URLs redirect to: its content hosts (cdn-lfs*.huggingface.co,
 * cdn-lfs*.hf.co, cas-bridge.xethub.hf.co). Added to the allowed origins with the default endpoint only;
 * a mirror's file host is listed in VITE_MODEL_ORIGINS.
 */
export const HUB_FILE_ORIGINS: readonly string[] = ['https://*.huggingface.co', 'https://*.hf.co'];

/** A Hub repository and, when given, the revision (branch, tag or commit) to read. */
export interface HubRepo {
  readonly owner: string;
  readonly name: string;
  /** null: the default branch, `main`. */
  readonly revision: string | null;
}

/** One Hub name part: letters, digits, `-`, `_`, `.`; no leading or trailing `-`/`.`, no `--` or `..`. */
const HUB_NAME = /^(?![-.])(?!.*(?:--|\.\.))[A-Za-z0-9._-]{1,96}(?<![-.])$/;

/**
 * `owner/name` or `owner/name@revision` as the Hub spells repo ids; null for anything else (a URL,
 * a path, a name with characters the Hub refuses).
 */
export function parseHubRepoId(text: string): HubRepo | null {
  const at = text.indexOf('@');
  const id = at === -1 ? text : text.slice(0, at);
  const revision = at === -1 ? null : text.slice(at + 1);
  const parts = id.split('/');
  if (parts.length !== 2) return null;
  const [owner = '', name = ''] = parts;
  if (!HUB_NAME.test(owner) || !HUB_NAME.test(name)) return null;
  if (revision !== null && (revision.length === 0 || /[\s?#]/.test(revision))) return null;
  return { owner, name, revision };
}

/** `owner/name` or `owner/name@revision`, as the user wrote it. */
export function hubRepoId(repo: HubRepo): string {
  return `${repo.owner}/${repo.name}${repo.revision === null ? '' : `@${repo.revision}`}`;
}

/**
 * The Hub's URL of the repo's manifest.json: `{endpoint}/{owner}/{name}/resolve/{revision}/manifest.json`
 * (a revision such as `refs/pr/1` is one path segment, encoded as the Hub's own clients do). Every
 * other file of the set resolves beside it.
 */
export function hubManifestUrl(repo: HubRepo, endpoint: string = DEFAULT_HUB_ENDPOINT): string {
  const base = endpoint.endsWith('/') ? endpoint : `${endpoint}/`;
  const revision = encodeURIComponent(repo.revision ?? 'main');
  return new URL(`${repo.owner}/${repo.name}/resolve/${revision}/manifest.json`, base).href;
}

/** What a build allows, from its environment (`modelSourceConfig`). */
export interface ModelSourceConfig {
  /** Whether Hub repo ids are accepted as sources. */
  readonly hubIds: boolean;
  /** The Hub's endpoint (scheme, host and optional sub-path). */
  readonly hubEndpoint: string;
  /**
   * Origins model sets may be downloaded from besides the page's own, as CSP host sources
   * (`https://host[:port]`, or `https://*.host` for every subdomain).
   */
  readonly origins: readonly string[];
}

/** A build setting that is not usable; the build stops with this message. */
export class ModelSourceConfigError extends Error {
  override readonly name = 'ModelSourceConfigError';
}

/** `https://host[:port]` or `https://*.host[:port]`: the host sources this project writes into a CSP. */
const ORIGIN_PATTERN = /^(https?):\/\/(\*\.)?([a-z0-9-]+(?:\.[a-z0-9-]+)*)(:\d{1,5})?$/;

/** An origin the deployer listed, checked and written as a CSP host source. */
function checkedOrigin(text: string, variable: string): string {
  const trimmed = text.trim().replace(/\/$/, '').toLowerCase();
  if (!ORIGIN_PATTERN.test(trimmed)) {
    throw new ModelSourceConfigError(
      `${variable}: "${text}" is not an origin. List origins such as https://models.example.org or ` +
        'https://*.example.org (scheme and host, optional port, no path), separated by spaces or commas.',
    );
  }
  return trimmed;
}

function truthy(value: string | undefined): boolean {
  return value !== undefined && /^(1|true|yes|on)$/i.test(value.trim());
}

/**
 * The build's model sources from its environment:
 * - VITE_MODEL_URL: the default set (a manifest URL or a Hub repo id); its origin is allowed;
 * - VITE_MODEL_ORIGINS: more origins sets may come from (a host, a mirror's file host), space or
 *   comma separated;
 * - VITE_HUB_IDS=true: repo ids are accepted, from VITE_HF_ENDPOINT (default huggingface.co), whose
 *   origin is allowed, and with the default endpoint its content hosts (HUB_FILE_ORIGINS).
 * Throws ModelSourceConfigError for a value that can't be used.
 */
export function modelSourceConfig(env: Readonly<Record<string, string | undefined>>): ModelSourceConfig {
  const endpointText = env.VITE_HF_ENDPOINT?.trim() || DEFAULT_HUB_ENDPOINT;
  let endpoint: URL;
  try {
    endpoint = new URL(endpointText);
  } catch {
    throw new ModelSourceConfigError(
      `VITE_HF_ENDPOINT: "${endpointText}" is not a URL (such as https://huggingface.co).`,
    );
  }
  if (endpoint.protocol !== 'https:' && endpoint.protocol !== 'http:') {
    throw new ModelSourceConfigError(`VITE_HF_ENDPOINT: "${endpointText}" must be an http(s) URL.`);
  }
  const defaultUrl = env.VITE_MODEL_URL?.trim() ?? '';
  const defaultRepo = parseHubRepoId(defaultUrl);
  const hubIds = truthy(env.VITE_HUB_IDS) || defaultRepo !== null;
  const origins: string[] = [];
  const add = (origin: string) => {
    if (!origins.includes(origin)) origins.push(origin);
  };
  if (defaultRepo === null && /^https?:\/\//i.test(defaultUrl)) add(new URL(defaultUrl).origin);
  for (const item of (env.VITE_MODEL_ORIGINS ?? '').split(/[\s,]+/).filter((s) => s.length > 0)) {
    add(checkedOrigin(item, 'VITE_MODEL_ORIGINS'));
  }
  const hubEndpoint = endpoint.href.replace(/\/$/, '');
  if (hubIds) {
    add(endpoint.origin);
    if (endpoint.origin === new URL(DEFAULT_HUB_ENDPOINT).origin) HUB_FILE_ORIGINS.forEach(add);
  }
  return { hubIds, hubEndpoint, origins };
}

/**
 * Whether `url` may be fetched under the build's policy: the page's own origin always, else an
 * origin of `allowed` matched as CSP matches host sources (same scheme, `*.` any subdomain, the
 * scheme's default port unless one is given).
 */
export function originAllowed(url: URL, allowed: readonly string[], pageOrigin: string | null): boolean {
  if (pageOrigin !== null && url.origin === pageOrigin) return true;
  const port = url.port || (url.protocol === 'https:' ? '443' : '80');
  return allowed.some((source) => {
    const match = ORIGIN_PATTERN.exec(source);
    if (!match) return false;
    const [, scheme, wildcard, host = '', sourcePort] = match;
    if (`${scheme}:` !== url.protocol) return false;
    if ((sourcePort ? sourcePort.slice(1) : url.protocol === 'https:' ? '443' : '80') !== port) return false;
    return wildcard ? url.hostname.endsWith(`.${host}`) : url.hostname === host;
  });
}

/** The message for a source outside the build's policy: which origin, and the setting that allows it. */
export function originRefusedMessage(url: URL, what: string): string {
  return (
    `${what} ${url.origin} is not among the origins this build may download model sets from. ` +
    `Rebuild with that origin in VITE_MODEL_ORIGINS (the page's Content-Security-Policy allows only the listed origins), ` +
    'or import the set as a folder.'
  );
}

/** What the user typed in the source box, understood. */
export type ResolvedSource =
  | { readonly kind: 'url'; readonly manifestUrl: string }
  | { readonly kind: 'hub'; readonly repo: HubRepo; readonly manifestUrl: string }
  | {
      readonly kind: 'invalid';
      /** 'forbidden': outside what the build allows; 'malformed': not a URL or repo id at all. */
      readonly reason: 'forbidden' | 'malformed';
      readonly message: string;
    };

/**
 * A manifest URL (absolute, or relative to `baseUri`; a folder URL ending in `/` gets manifest.json)
 * or a Hub repo id, checked against the build's policy. `pageOrigin`: the origin always allowed
 * (the app's own), or null where none is (the CLI).
 */
export function resolveModelSource(
  input: string,
  config: ModelSourceConfig,
  baseUri: string | null,
  pageOrigin: string | null,
): ResolvedSource {
  const text = input.trim();
  if (text.length === 0) {
    return {
      kind: 'invalid',
      reason: 'malformed',
      message: 'Give a manifest URL or a Hugging Face repo id (owner/name).',
    };
  }
  const repo = /^[a-z][a-z0-9+.-]*:/i.test(text) ? null : parseHubRepoId(text);
  if (repo !== null) {
    if (!config.hubIds) {
      return {
        kind: 'invalid',
        reason: 'forbidden',
        message: `"${text}" looks like a Hugging Face repo id, but this build does not open repo ids: rebuild with VITE_HUB_IDS=true, or give the manifest's URL.`,
      };
    }
    const manifestUrl = hubManifestUrl(repo, config.hubEndpoint);
    const url = new URL(manifestUrl);
    if (!originAllowed(url, config.origins, pageOrigin)) {
      return { kind: 'invalid', reason: 'forbidden', message: originRefusedMessage(url, 'The Hub endpoint') };
    }
    return { kind: 'hub', repo, manifestUrl };
  }
  let url: URL;
  try {
    url = baseUri === null ? new URL(text) : new URL(text, baseUri);
  } catch {
    return {
      kind: 'invalid',
      reason: 'malformed',
      message: `"${text}" is neither a URL nor a Hugging Face repo id (owner/name or owner/name@revision).`,
    };
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    return {
      kind: 'invalid',
      reason: 'malformed',
      message: `Model sets load over http(s) only, not ${url.protocol}`,
    };
  }
  if (url.pathname.endsWith('/')) url.pathname += 'manifest.json';
  if (!originAllowed(url, config.origins, pageOrigin)) {
    return { kind: 'invalid', reason: 'forbidden', message: originRefusedMessage(url, 'The model source') };
  }
  return { kind: 'url', manifestUrl: url.href };
}
