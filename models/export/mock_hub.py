"""A local stand-in for the Hugging Face Hub: the endpoints `huggingface_hub` downloads through and the
ones a browser fetches a hosted model set by, served from a folder. Standard library only (it runs
where torch does not), for tests of `kandinsky_export.py --hub` and of the app opening a set by repo
id.

    python3 models/export/mock_hub.py --root DIR [--repo OWNER/NAME[@REV]=FOLDER ...] [--port 0]
        [--redirect] [--token T] [--base-path /hub]

DIR/<owner>/<name>/ is repo `owner/name` at revision `main`; a sibling folder `<name>@<rev>/` is the
same repo at revision (branch or tag) `<rev>`; `--repo` serves any folder as a repo (e.g. an
exported set: `--repo tiny-hub/kandinsky-2.2-web=models/fixtures/tiny`). Each revision's commit id is a sha1 of its file list
and hashes, so it is stable while the files are. Once listening, the server prints one JSON line on
standard output, {"endpoint": "http://127.0.0.1:PORT", "cdn": "http://127.0.0.1:PORT2" | null,
"repos": [...]}, and serves until it is terminated. A test sets HF_ENDPOINT to `endpoint` (and
HF_HUB_OFFLINE=0).

What it answers, as the Hub does (huggingface_hub's hf_api.py and file_download.py read these):
  GET  /api/models/{repo}[/revision/{rev}]   {id, sha, siblings: [{rfilename}]}; ?blobs=1 adds each
                                             file's size, blobId and lfs {sha256, size}
  GET  /api/models/{repo}/tree/{rev}[/{dir}] the file list (?recursive=1 for every level)
  HEAD/GET /{repo}/resolve/{rev}/{path}      the file, with X-Repo-Commit and ETag (git blob id);
                                             large/binary ("LFS") files also X-Linked-Etag (their
                                             sha256) and X-Linked-Size, and with --redirect a 302 to
                                             the second port, a content host on another origin
  HEAD/GET {cdn}/lfs/{sha256}                the bytes (Range, ETag "<sha256>")
Errors carry X-Error-Code (RepoNotFound 401, RevisionNotFound 404, EntryNotFound 404). Both ports
answer Range requests (206, Content-Range; 416 when unsatisfiable), send CORS headers (any origin,
Range/ETag/Content-Length exposed) and answer OPTIONS preflights. With --token, the API and resolve
URLs need `Authorization: Bearer T` (the CDN's URLs stand for signed ones and need none).
GET /_mock/log (on the first port) returns the requests served so far, for tests to assert on.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Dict, List, Optional, Tuple
from urllib.parse import parse_qs, quote, unquote, urlsplit

# What the Hub stores in LFS: the default .gitattributes patterns, files of 10 MiB and more, and
# any binary file (the Hub refuses binary files outside LFS/Xet).
LFS_SUFFIXES = {".safetensors", ".bin", ".onnx", ".pt", ".pth", ".ckpt", ".h5", ".msgpack", ".npy", ".npz", ".pkl"}
LFS_MIN_BYTES = 10 * 1024 * 1024
CONTENT_TYPES = {
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
    ".md": "text/markdown; charset=utf-8",
    ".png": "image/png",
}
EXPOSED_HEADERS = (
    "Content-Length, Content-Range, Content-Type, Accept-Ranges, ETag, X-Repo-Commit, X-Linked-Etag, X-Linked-Size"
)


class RepoFile:
    def __init__(self, path: Path, rfilename: str):
        self.path = path
        self.rfilename = rfilename
        data = path.read_bytes()
        self.size = len(data)
        self.sha256 = hashlib.sha256(data).hexdigest()
        # git's blob id: sha1 of "blob <size>\0" + content (what the Hub's ETag is for regular files)
        self.blob_id = hashlib.sha1(b"blob %d\0" % self.size + data).hexdigest()
        self.lfs = path.suffix in LFS_SUFFIXES or self.size >= LFS_MIN_BYTES or b"\0" in data[:8192]

    def content_type(self) -> str:
        return CONTENT_TYPES.get(self.path.suffix, "application/octet-stream")


class Revision:
    def __init__(self, repo_id: str, name: str, folder: Path):
        self.repo_id = repo_id
        self.name = name
        self.files: Dict[str, RepoFile] = {}
        for path in sorted(folder.rglob("*")):
            relative = path.relative_to(folder).as_posix()
            if path.is_file() and not any(part.startswith(".") for part in relative.split("/")):
                self.files[relative] = RepoFile(path, relative)
        listing = "".join(f"{name}\n{f.rfilename}\n{f.sha256}\n" for f in self.files.values())
        self.sha = hashlib.sha1(f"{repo_id}@{name}\n{listing}".encode()).hexdigest()


class MockHub:
    """The repos under a root folder and/or named folders, by repo id and revision (a name or a
    commit id)."""

    def __init__(self, root: Optional[Path], named: Optional[Dict[str, Path]] = None):
        self.repos: Dict[str, Dict[str, Revision]] = {}
        folders: List[Tuple[str, Path]] = []
        if root is not None:
            for owner in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
                for folder in sorted(p for p in owner.iterdir() if p.is_dir() and not p.name.startswith(".")):
                    folders.append((f"{owner.name}/{folder.name}", folder))
        folders += sorted((named or {}).items())
        for spec, folder in folders:
            repo_id, _, revision = spec.partition("@")
            rev = Revision(repo_id, revision or "main", folder)
            revisions = self.repos.setdefault(repo_id, {})
            revisions[rev.name] = rev
            revisions[rev.sha] = rev

    def revision(self, repo_id: str, rev: str) -> Tuple[Optional[Revision], Optional[str]]:
        """(revision, None), or (None, error code) when the repo or the revision is unknown."""
        if repo_id not in self.repos:
            return None, "RepoNotFound"
        found = self.repos[repo_id].get(rev)
        return (found, None) if found else (None, "RevisionNotFound")


def parse_range(header: Optional[str], size: int) -> Tuple[int, int, bool]:
    """(start, end inclusive, is_partial) for a `Range: bytes=...` header; raises ValueError when the
    range cannot be satisfied. Several ranges are not supported (the whole file is sent, as a server
    may)."""
    if not header:
        return 0, size - 1, False
    match = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", header)
    if not match or (not match.group(1) and not match.group(2)):
        return 0, size - 1, False
    first, last = match.group(1), match.group(2)
    if not first:  # the last N bytes
        count = int(last)
        if count == 0:
            raise ValueError("empty suffix range")
        return max(0, size - count), size - 1, True
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or end < start:
        raise ValueError("range outside the file")
    return start, end, True


def make_handler(hub: MockHub, state: dict, role: str):
    """The request handler of the Hub port (role 'hub') or of the content host (role 'cdn')."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "MockHub/1"

        def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
            pass  # the log is /_mock/log, not stderr

        def _record(self, status: int) -> None:
            with state["lock"]:
                state["log"].append(
                    {"port": role, "method": self.command, "path": self.path, "range": self.headers.get("Range"), "status": status}
                )

        def _cors(self) -> None:
            self.send_header("Access-Control-Allow-Origin", "*")
            self.send_header("Access-Control-Expose-Headers", EXPOSED_HEADERS)

        def _send(self, status: int, body: bytes = b"", headers: Optional[Dict[str, str]] = None) -> None:
            self._record(status)
            self.send_response(status)
            self._cors()
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _json(self, value, headers: Optional[Dict[str, str]] = None) -> None:
            self._send(200, json.dumps(value).encode(), {"Content-Type": "application/json", **(headers or {})})

        def _error(self, status: int, code: Optional[str], message: str, headers: Optional[Dict[str, str]] = None) -> None:
            body = json.dumps({"error": message}).encode()
            extra = {"Content-Type": "application/json", "X-Error-Message": message}
            if code:
                extra["X-Error-Code"] = code
            self._send(status, body, {**extra, **(headers or {})})

        def _file(self, entry: RepoFile, headers: Dict[str, str]) -> None:
            try:
                start, end, partial = parse_range(self.headers.get("Range"), entry.size)
            except ValueError:
                self._send(416, b"", {"Content-Range": f"bytes */{entry.size}", **headers})
                return
            length = end - start + 1
            self._record(206 if partial else 200)
            self.send_response(206 if partial else 200)
            self._cors()
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Type", entry.content_type())
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Length", str(length))
            if partial:
                self.send_header("Content-Range", f"bytes {start}-{end}/{entry.size}")
            self.end_headers()
            if self.command == "HEAD":
                return
            with entry.path.open("rb") as stream:
                stream.seek(start)
                left = length
                while left > 0:
                    chunk = stream.read(min(left, 1 << 20))
                    if not chunk:
                        break
                    self.wfile.write(chunk)
                    left -= len(chunk)

        def do_OPTIONS(self) -> None:  # noqa: N802 - http.server's naming
            self._record(204)
            self.send_response(204)
            self.send_header("Access-Control-Allow-Origin", "*")
            self.send_header("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
            self.send_header("Access-Control-Allow-Headers", "Range, Authorization, Content-Type")
            self.send_header("Access-Control-Max-Age", "600")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_HEAD(self) -> None:  # noqa: N802
            self.do_GET()

        def do_GET(self) -> None:  # noqa: N802
            url = urlsplit(self.path)
            path = unquote(url.path)
            base = state["base_path"]
            if not path.startswith(base + "/"):
                self._error(404, "EntryNotFound", f"{path}: not under {base or '/'}")
                return
            path = path[len(base) :]
            if role == "cdn":
                self._cdn(path)
                return
            if path == "/_mock/log":
                with state["lock"]:
                    log = list(state["log"])
                self._json(log)
                return
            token = state["token"]
            if token is not None:
                given = self.headers.get("Authorization")
                if given != f"Bearer {token}":
                    # As the Hub: no token looks like a missing repo; a wrong one is named as such.
                    if given:
                        self._error(401, None, "Invalid credentials in Authorization header")
                    else:
                        self._error(401, "RepoNotFound", "Repository not found")
                    return
            query = parse_qs(url.query)
            api = re.fullmatch(r"/api/models/([^/]+/[^/]+)(?:/revision/([^/]+))?", path)
            if api:
                self._model_info(api.group(1), api.group(2) or "main", bool(query.get("blobs")))
                return
            tree = re.fullmatch(r"/api/models/([^/]+/[^/]+)/tree/([^/]+)(?:/(.*))?", path)
            if tree:
                recursive = query.get("recursive", ["false"])[0].lower() in ("1", "true")
                self._tree(tree.group(1), tree.group(2), (tree.group(3) or "").strip("/"), recursive)
                return
            resolve = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
            if resolve:
                self._resolve(resolve.group(1), resolve.group(2), resolve.group(3))
                return
            self._error(404, "EntryNotFound", f"{path}: not an endpoint of this mock Hub")

        def _found(self, repo_id: str, rev: str) -> Optional[Revision]:
            revision, error = hub.revision(repo_id, rev)
            if error == "RepoNotFound":
                self._error(401, error, f"Repository {repo_id} not found")
            elif error:
                self._error(404, error, f"Revision {rev} not found in {repo_id}")
            return revision

        def _model_info(self, repo_id: str, rev: str, blobs: bool) -> None:
            revision = self._found(repo_id, rev)
            if revision is None:
                return
            siblings = []
            for entry in revision.files.values():
                sibling: dict = {"rfilename": entry.rfilename}
                if blobs:
                    sibling.update(size=entry.size, blobId=entry.blob_id)
                    if entry.lfs:
                        sibling["lfs"] = {"sha256": entry.sha256, "size": entry.size, "pointerSize": 134}
                siblings.append(sibling)
            self._json({"_id": revision.sha[:24], "id": repo_id, "modelId": repo_id, "sha": revision.sha, "private": state["token"] is not None, "siblings": siblings})

        def _tree(self, repo_id: str, rev: str, folder: str, recursive: bool) -> None:
            revision = self._found(repo_id, rev)
            if revision is None:
                return
            prefix = f"{folder}/" if folder else ""
            items, folders = [], set()
            for entry in revision.files.values():
                if not entry.rfilename.startswith(prefix):
                    continue
                rest = entry.rfilename[len(prefix) :]
                if "/" in rest and not recursive:
                    folders.add(prefix + rest.split("/")[0])
                    continue
                parts = rest.split("/")[:-1]
                for depth in range(1, len(parts) + 1):
                    folders.add(prefix + "/".join(parts[:depth]))
                item = {"type": "file", "oid": entry.blob_id, "size": entry.size, "path": entry.rfilename}
                if entry.lfs:
                    item["lfs"] = {"oid": entry.sha256, "size": entry.size, "pointerSize": 134}
                items.append(item)
            items += [{"type": "directory", "oid": hashlib.sha1(f.encode()).hexdigest(), "size": 0, "path": f} for f in sorted(folders)]
            self._json(items)

        def _resolve(self, repo_id: str, rev: str, filename: str) -> None:
            revision = self._found(repo_id, rev)
            if revision is None:
                return
            entry = revision.files.get(filename)
            commit = {"X-Repo-Commit": revision.sha}
            if entry is None:
                self._error(404, "EntryNotFound", f"{filename} not found in {repo_id}@{rev}", commit)
                return
            headers = {**commit, "ETag": f'"{entry.blob_id}"'}
            if entry.lfs:
                headers.update({"X-Linked-Etag": f'"{entry.sha256}"', "X-Linked-Size": str(entry.size)})
                if state["cdn"]:
                    name = quote(entry.rfilename.split("/")[-1])
                    location = f"{state['cdn']}{state['base_path']}/lfs/{entry.sha256}?name={name}"
                    self._send(302, b"", {**headers, "Location": location})
                    return
                headers["ETag"] = f'"{entry.sha256}"'
            self._file(entry, headers)

        def _cdn(self, path: str) -> None:
            match = re.fullmatch(r"/lfs/([0-9a-f]{64})", path)
            entry = state["blobs"].get(match.group(1)) if match else None
            if entry is None:
                self._error(404, "EntryNotFound", f"{path}: no such blob")
                return
            self._file(entry, {"ETag": f'"{entry.sha256}"'})

    return Handler


def serve(
    root: Optional[Path],
    port: int = 0,
    redirect: bool = False,
    cdn_port: int = 0,
    token: Optional[str] = None,
    base_path: str = "",
    host: str = "127.0.0.1",
    named: Optional[Dict[str, Path]] = None,
) -> Tuple[dict, List[ThreadingHTTPServer]]:
    """Starts the server(s) in background threads; returns ({endpoint, cdn, repos}, servers)."""
    hub = MockHub(root, named)
    base = "/" + base_path.strip("/") if base_path.strip("/") else ""
    blobs = {f.sha256: f for revisions in hub.repos.values() for rev in revisions.values() for f in rev.files.values()}
    state = {"lock": threading.Lock(), "log": [], "token": token, "base_path": base, "cdn": None, "blobs": blobs}
    servers = []
    cdn_url = None
    if redirect:
        cdn = ThreadingHTTPServer((host, cdn_port), make_handler(hub, state, "cdn"))
        cdn.daemon_threads = True
        servers.append(cdn)
        cdn_url = f"http://{host}:{cdn.server_address[1]}"
        state["cdn"] = cdn_url
    main = ThreadingHTTPServer((host, port), make_handler(hub, state, "hub"))
    main.daemon_threads = True
    servers.insert(0, main)
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    urls = {"endpoint": f"http://{host}:{main.server_address[1]}{base}", "cdn": cdn_url, "repos": sorted(hub.repos)}
    return urls, servers


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description="A local mock of the Hugging Face Hub's download endpoints")
    parser.add_argument("--root", type=Path, help="folder of <owner>/<name>[@<revision>]/ repos")
    parser.add_argument(
        "--repo",
        action="append",
        default=[],
        metavar="OWNER/NAME[@REV]=FOLDER",
        help="serve FOLDER as that repo (revision main unless given); repeatable",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="the Hub's port (0: any free port)")
    parser.add_argument("--redirect", action="store_true", help="answer LFS files with a 302 to a second port")
    parser.add_argument("--cdn-port", type=int, default=0, help="that second port (0: any free port)")
    parser.add_argument("--token", help="require `Authorization: Bearer TOKEN` (a private repo)")
    parser.add_argument("--base-path", default="", help="serve under this URL path, e.g. /hub")
    args = parser.parse_args(argv)
    if args.root is not None and not args.root.is_dir():
        parser.error(f"--root {args.root}: not a folder (give a folder of <owner>/<name>/ repos)")
    named: Dict[str, Path] = {}
    for spec in args.repo:
        repo, equals, folder = spec.partition("=")
        if not equals or not re.fullmatch(r"[^/@=\s]+/[^/@=\s]+(@[^/@=\s]+)?", repo) or not Path(folder).is_dir():
            parser.error(f"--repo {spec}: give OWNER/NAME[@REV]=FOLDER with an existing folder")
        named[repo] = Path(folder)
    if args.root is None and not named:
        parser.error("give --root and/or --repo: the repos to serve")
    urls, servers = serve(args.root, args.port, args.redirect, args.cdn_port, args.token, args.base_path, args.host, named)
    print(json.dumps(urls), flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        for server in servers:
            server.shutdown()
    sys.exit(0)


if __name__ == "__main__":
    main()
