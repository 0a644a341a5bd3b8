import { checkFilePath } from '../../models/manifest';
import { originAllowed, originRefusedMessage } from '../../models/model-origins';
import { StoreError, throwIfAborted } from './store-error';

/** Bytes of one file from some offset on, as a source delivers them. */
export interface SourceRange {
  /**
   * Offset in the file of the body's first byte: the offset asked for, or 0 when the server
   * ignored the Range header and sent the whole file.
   */
  readonly start: number;
  /** How many bytes the source says the body holds, when it says (Content-Length); else null. */
  readonly declaredBytes: number | null;
  readonly body: ReadableStream<Uint8Array>;
}

/** Where a model set comes from: a URL prefix or files the user picked. */
export interface ModelSource {
  /** For messages: the manifest URL, or "the picked folder". */
  readonly description: string;
  readManifestText(signal?: AbortSignal): Promise<string>;
  /** The file's bytes from `offset` (bytes) to its end. */
  openRange(path: string, offset: number, signal?: AbortSignal): Promise<SourceRange>;
}

function assertRelativePath(path: string): void {
  const problem = checkFilePath(path);
  if (problem !== null) {
    throw new StoreError(
      'SOURCE_FORBIDDEN',
      `The file path "${path}" is not a plain path inside the model set (${problem}).`,
      {
        details: { path },
      },
    );
  }
}

export type FetchFunction = (input: string, init?: RequestInit) => Promise<Response>;

/**
 * The build's list of origins sets may be downloaded from (models/model-origins.ts), which the
 * page's CSP enforces on the page but nothing enforces in a worker: the store checks it itself.
 */
export interface OriginPolicy {
  /** CSP host sources, as `ModelSourceConfig.origins`. */
  readonly origins: readonly string[];
  /** The app's own origin, always allowed. */
  readonly pageOrigin: string | null;
}

/**
 * Why a fetch failed without an answer, where the platform hides it: a browser reports a response
 * without CORS headers exactly as it reports no network (a TypeError), so a failed request is asked
 * again in `no-cors` mode (HEAD, nothing read): if the host answers that, the failure was CORS.
 * 'unknown': the probe can't tell, because the page is cross-origin isolated (COEP require-corp
 * blocks a no-cors answer without Cross-Origin-Resource-Policy just as it would block no answer).
 */
export type FailureProbe = (
  url: string,
  signal?: AbortSignal,
) => Promise<'offline' | 'no-answer' | 'no-cors' | 'unknown'>;

/** The browser's probe (workers and pages): `onLine` false means offline without asking. */
export function noCorsProbe(
  fetchFn: FetchFunction,
  onLine: () => boolean | undefined,
  isolated: () => boolean = () => false,
): FailureProbe {
  return async (url, signal) => {
    if (onLine() === false) return 'offline';
    try {
      await fetchFn(url, { method: 'HEAD', mode: 'no-cors', cache: 'no-store', credentials: 'omit', signal });
      return 'no-cors';
    } catch {
      return isolated() ? 'unknown' : 'no-answer';
    }
  };
}

/** In a browser (page or worker) a failed fetch may be CORS; in Node it never is. */
function defaultProbe(fetchFn: FetchFunction): FailureProbe | null {
  const scope = globalThis as {
    document?: unknown;
    WorkerGlobalScope?: unknown;
    navigator?: { onLine?: boolean };
    crossOriginIsolated?: boolean;
  };
  if (scope.document === undefined && scope.WorkerGlobalScope === undefined) return null;
  return noCorsProbe(
    fetchFn,
    () => scope.navigator?.onLine,
    () => scope.crossOriginIsolated === true,
  );
}

/** The headers a host must send for the app to read its files from another origin. */
const CORS_ADVICE =
  'The host of the files (and any host their URLs redirect to) must answer with ' +
  '"Access-Control-Allow-Origin: *" (or this site\'s origin), allow the Range request header and ' +
  'expose Content-Range ("Access-Control-Expose-Headers: Content-Range, Content-Length, ETag").';

/** HTTP statuses worth retrying: the server or a proxy is overloaded or restarting. */
function isRetryableStatus(status: number): boolean {
  return status >= 500 || status === 408 || status === 429;
}

/**
 * A model set served over HTTP(S): `manifestUrl` names manifest.json, and every file URL is
 * resolved relative to it and must stay within its origin and folder.
 */
export class UrlSource implements ModelSource {
  readonly description: string;
  private readonly manifestUrl: URL;
  private readonly folder: URL;
  private readonly fetchFn: FetchFunction;
  private readonly policy: OriginPolicy | null;
  private readonly probe: FailureProbe | null;

  /**
   * `policy`: the origins the build allows (none given: any); checked on the manifest URL and on
   * the final URL of every response, after redirects. `probe`: tells a CORS failure from no
   * network (default: the no-cors probe in a browser, none in Node).
   */
  constructor(
    manifestUrl: string | URL,
    options: { fetch?: FetchFunction; policy?: OriginPolicy; probe?: FailureProbe | null } = {},
  ) {
    let url: URL;
    try {
      url = new URL(manifestUrl);
    } catch (error) {
      throw new StoreError(
        'SOURCE_FORBIDDEN',
        `"${String(manifestUrl)}" is not an absolute URL for manifest.json.`,
        {
          cause: error,
        },
      );
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      throw new StoreError('SOURCE_FORBIDDEN', `Model sets load over http(s) only, not ${url.protocol}.`);
    }
    url.hash = '';
    this.manifestUrl = url;
    this.folder = new URL('./', url);
    this.folder.search = '';
    this.description = url.href;
    this.fetchFn = options.fetch ?? ((input, init) => fetch(input, init));
    this.policy = options.policy ?? null;
    this.probe = options.probe === undefined ? defaultProbe(this.fetchFn) : options.probe;
    this.checkOrigin(url, 'The model source');
  }

  private checkOrigin(url: URL, what: string, path?: string): void {
    if (this.policy === null || originAllowed(url, this.policy.origins, this.policy.pageOrigin)) return;
    throw new StoreError('SOURCE_FORBIDDEN', originRefusedMessage(url, what), {
      ...(path === undefined ? {} : { details: { path } }),
    });
  }

  /** The URL of a manifest path; refuses anything that would leave the model set's folder. */
  resolve(path: string): URL {
    assertRelativePath(path);
    const url = new URL(path, this.folder);
    if (url.origin !== this.folder.origin || !url.pathname.startsWith(this.folder.pathname)) {
      throw new StoreError('SOURCE_FORBIDDEN', `The file "${path}" resolves outside ${this.folder.href}.`, {
        details: { path },
      });
    }
    return url;
  }

  async readManifestText(signal?: AbortSignal): Promise<string> {
    const response = await this.request(this.manifestUrl, 'manifest.json', {}, signal);
    try {
      return await response.text();
    } catch (error) {
      throwIfAborted(signal);
      throw new StoreError(
        'SOURCE_UNREACHABLE',
        `The connection dropped while reading ${this.manifestUrl.href}.`,
        {
          cause: error,
          retryable: true,
        },
      );
    }
  }

  async openRange(path: string, offset: number, signal?: AbortSignal): Promise<SourceRange> {
    const url = this.resolve(path);
    const headers: Record<string, string> = offset > 0 ? { Range: `bytes=${offset}-` } : {};
    const response = await this.request(url, path, headers, signal);
    if (!response.body) {
      throw new StoreError('SOURCE_UNREACHABLE', `${url.href} answered without a body.`, {
        details: { path },
        retryable: true,
      });
    }
    let start = 0;
    if (response.status === 206) {
      const contentRange = response.headers.get('Content-Range');
      if (contentRange === null && response.type === 'cors') {
        // A cross-origin 206 whose host did not expose Content-Range: where the bytes start is hidden.
        await response.body.cancel().catch(() => undefined);
        throw new StoreError(
          'SOURCE_NO_CORS',
          `${hostOf(response, url)} sent part of "${path}" without exposing its Content-Range header to this site, so where the bytes belong can't be checked. ${CORS_ADVICE}`,
          { details: { path, status: 206 } },
        );
      }
      // "bytes 100-199/200": the body starts at 100. A range we didn't ask for is treated as unusable.
      const match = /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(response.headers.get('Content-Range') ?? '');
      start = match ? Number(match[1]) : Number.NaN;
      if (start !== offset) {
        await response.body.cancel().catch(() => undefined);
        throw new StoreError(
          'HTTP_ERROR',
          `${url.href} answered a range request with Content-Range "${response.headers.get('Content-Range')}" instead of bytes ${offset}-.`,
          { details: { path, status: 206 }, retryable: true },
        );
      }
    }
    // Content-Length counts encoded bytes; with compression it says nothing about the file's size.
    const encoding = response.headers.get('Content-Encoding');
    const lengthHeader = response.headers.get('Content-Length');
    const declaredBytes =
      lengthHeader !== null && (encoding === null || encoding === 'identity') ? Number(lengthHeader) : null;
    return {
      start,
      declaredBytes: Number.isFinite(declaredBytes) ? declaredBytes : null,
      body: response.body,
    };
  }

  private async request(
    url: URL,
    path: string,
    headers: Record<string, string>,
    signal: AbortSignal | undefined,
  ): Promise<Response> {
    throwIfAborted(signal);
    let response: Response;
    try {
      // no-store: gigabytes of weights must not be kept a second time in the HTTP cache.
      response = await this.fetchFn(url.href, {
        headers,
        signal,
        cache: 'no-store',
        credentials: 'same-origin',
      });
    } catch (error) {
      throwIfAborted(signal);
      const failure = this.probe
        ? await this.probe(url.href, signal).catch(() => 'no-answer' as const)
        : null;
      throwIfAborted(signal);
      if (failure === 'no-cors') {
        throw new StoreError(
          'SOURCE_NO_CORS',
          `${url.origin} answered, but it (or a host ${url.href} redirects to) sent no Access-Control-Allow-Origin ` +
            `header, so the browser keeps the file from this site. ${CORS_ADVICE}`,
          { cause: error, details: { path } },
        );
      }
      throw new StoreError(
        'SOURCE_UNREACHABLE',
        failure === 'offline'
          ? `Could not reach ${url.href}: this device is offline. Downloads resume once it is back online.`
          : failure === 'unknown'
            ? `Could not reach ${url.href}: check the connection and the model URL. If they are fine, the host ` +
              '(or one its URLs redirect to) may not send the Access-Control-Allow-Origin header: in a ' +
              `cross-origin isolated page the browser reports both alike. ${CORS_ADVICE}`
            : `Could not reach ${url.href}: check the connection and the model URL.`,
        { cause: error, details: { path }, retryable: true },
      );
    }
    // Redirects are followed by fetch itself; where they led must be allowed too.
    if (response.url) {
      try {
        this.checkOrigin(new URL(response.url), `${url.href} redirected to`, path);
      } catch (error) {
        await response.body?.cancel().catch(() => undefined);
        throw error;
      }
    }
    if (response.ok) return response;
    await response.body?.cancel().catch(() => undefined);
    if (response.status === 404 || response.status === 410) {
      throw new StoreError(
        'SOURCE_FILE_MISSING',
        `${url.href} does not exist on the server (HTTP ${response.status}).`,
        {
          details: { path, status: response.status },
        },
      );
    }
    throw new StoreError(
      'HTTP_ERROR',
      `${url.href} answered HTTP ${response.status} ${response.statusText}.`.trim(),
      {
        details: { path, status: response.status },
        retryable: isRetryableStatus(response.status),
      },
    );
  }
}

/** Who sent a response: its final URL's origin (after redirects), else the requested one. */
function hostOf(response: Response, requested: URL): string {
  return response.url ? new URL(response.url).origin : requested.origin;
}

/** A file the user picked: a Blob plus, for folder picks, its path inside the folder. */
export interface PickedFile extends Blob {
  readonly name: string;
  readonly webkitRelativePath?: string;
}

/**
 * A model set imported from the user's disk (file or folder picker, drag and drop): no network.
 * Keys are manifest-relative paths.
 */
export class FileSource implements ModelSource {
  readonly description = 'the picked folder';

  constructor(private readonly files: ReadonlyMap<string, Blob>) {}

  /**
   * From an `<input type=file webkitdirectory>` pick: paths are relative to the folder holding
   * manifest.json (the picked folder's own name, or any deeper prefix, is dropped).
   */
  static fromPickedFiles(picked: Iterable<PickedFile>): FileSource {
    const list = [...picked];
    const pathOf = (file: PickedFile) =>
      file.webkitRelativePath && file.webkitRelativePath.length > 0 ? file.webkitRelativePath : file.name;
    const manifest = list
      .map(pathOf)
      .filter((path) => path === 'manifest.json' || path.endsWith('/manifest.json'))
      .sort((a, b) => a.length - b.length)[0];
    const prefix = manifest ? manifest.slice(0, -'manifest.json'.length) : '';
    const files = new Map<string, Blob>();
    for (const file of list) {
      const path = pathOf(file);
      if (path.startsWith(prefix)) files.set(path.slice(prefix.length), file);
    }
    return new FileSource(files);
  }

  async readManifestText(): Promise<string> {
    const manifest = this.files.get('manifest.json');
    if (!manifest) {
      throw new StoreError(
        'SOURCE_FILE_MISSING',
        'The picked folder has no manifest.json: pick the model set folder itself.',
        {
          details: { path: 'manifest.json' },
        },
      );
    }
    return manifest.text();
  }

  async openRange(path: string, offset: number, signal?: AbortSignal): Promise<SourceRange> {
    assertRelativePath(path);
    throwIfAborted(signal);
    const file = this.files.get(path);
    if (!file) {
      throw new StoreError(
        'SOURCE_FILE_MISSING',
        `The picked folder has no "${path}": pick the complete model set folder.`,
        {
          details: { path },
        },
      );
    }
    const start = Math.min(offset, file.size);
    return { start, declaredBytes: file.size - start, body: file.slice(start).stream() };
  }
}
