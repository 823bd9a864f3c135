#!/usr/bin/env python3
"""Images and a Helm repository for the test node, with no registry and no Docker daemon.

  oci.py image --ref REF --out FILE [--user UID:GID] [--entrypoint ARG]... [--cmd ARG]...
               [--env K=V]... [--file SRC:DEST[:MODE]]... [--dir DEST[:MODE]]...
               [--symlink DEST:TARGET]...
      Writes an OCI image layout tarball (one uncompressed layer, config, manifest, index with the
      `io.containerd.image.name` annotation) for `ctr -n k8s.io images import FILE`.

  oci.py charts --src DIR --out DIR
      Packages every chart DIR/*/ (a directory with Chart.yaml) and each of its unpacked subcharts
      (charts/*/) as NAME-VERSION.tgz, and writes index.yaml (relative URLs, sha256 digests): a
      static Helm repository for any HTTP server.

Everything is deterministic (mtime 0, sorted entries), so the same input gives the same digests.
Only the Python standard library is used.
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import sys
import tarfile
import time


def fail(msg):
    print(f"oci.py: {msg}", file=sys.stderr)
    sys.exit(1)


def tar_info(name, kind, mode, uid=0, gid=0):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.uid, info.gid = uid, gid
    info.uname = info.gname = ""
    info.mtime = 0
    return info


def build_layer(files, dirs, symlinks):
    """An uncompressed layer tar: every parent directory, then the requested entries, sorted."""
    entries = {}  # path -> (kind, mode, data or link target)

    def add_parents(path):
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            entries.setdefault(d, (tarfile.DIRTYPE, 0o755, None))

    for spec in dirs:
        dest, _, mode = spec.partition(":")
        dest = dest.strip("/")
        add_parents(dest)
        entries[dest] = (tarfile.DIRTYPE, int(mode, 8) if mode else 0o755, None)
    for spec in files:
        parts = spec.split(":")
        if len(parts) not in (2, 3):
            fail(f"--file {spec!r}: expected SRC:DEST[:MODE]")
        src, dest = parts[0], parts[1].strip("/")
        try:
            with open(src, "rb") as f:
                data = f.read()
        except OSError as e:
            fail(f"--file {spec!r}: {e}")
        mode = int(parts[2], 8) if len(parts) == 3 else (os.stat(src).st_mode & 0o777)
        add_parents(dest)
        entries[dest] = (tarfile.REGTYPE, mode, data)
    for spec in symlinks:
        dest, sep, target = spec.partition(":")
        if not sep:
            fail(f"--symlink {spec!r}: expected DEST:TARGET")
        dest = dest.strip("/")
        if dest in entries:
            fail(f"--symlink {spec!r}: {dest} is already in the image")
        add_parents(dest)
        entries[dest] = (tarfile.SYMTYPE, 0o777, target)

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(entries):
            kind, mode, payload = entries[path]
            info = tar_info(path, kind, mode)
            if kind == tarfile.REGTYPE:
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
            else:
                if kind == tarfile.SYMTYPE:
                    info.linkname = payload
                tar.addfile(info)
    return buf.getvalue()


def blob(data):
    return "sha256:" + hashlib.sha256(data).hexdigest(), data


def cmd_image(args):
    ref = args.ref
    if ":" not in ref.rsplit("/", 1)[-1] or ref.endswith(":latest"):
        fail(f"{ref!r}: give a fixed tag (an untagged or :latest image is always pulled)")
    layer_digest, layer = blob(build_layer(args.file, args.dir, args.symlink))
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Env": args.env or ["PATH=/usr/local/bin:/usr/bin:/bin"],
            "WorkingDir": "/",
        },
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        "history": [{"created_by": "tests/cluster/oci.py", "created": "1970-01-01T00:00:00Z"}],
    }
    if args.user:
        config["config"]["User"] = args.user
    if args.entrypoint:
        config["config"]["Entrypoint"] = args.entrypoint
    if args.cmd:
        config["config"]["Cmd"] = args.cmd
    config_digest, config_bytes = blob(json.dumps(config, sort_keys=True).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": len(config_bytes),
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": layer_digest,
                "size": len(layer),
            }
        ],
    }
    manifest_digest, manifest_bytes = blob(json.dumps(manifest, sort_keys=True).encode())
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": manifest_digest,
                "size": len(manifest_bytes),
                "platform": {"architecture": "amd64", "os": "linux"},
                "annotations": {
                    "io.containerd.image.name": ref,
                    "org.opencontainers.image.ref.name": ref.rsplit(":", 1)[1],
                },
            }
        ],
    }
    members = [
        ("oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode()),
        ("index.json", json.dumps(index, sort_keys=True).encode()),
    ]
    for digest, data in ((layer_digest, layer), (config_digest, config_bytes), (manifest_digest, manifest_bytes)):
        members.append(("blobs/sha256/" + digest.split(":", 1)[1], data))
    tmp = args.out + ".tmp"
    with tarfile.open(tmp, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for d in ("blobs", "blobs/sha256"):
            tar.addfile(tar_info(d, tarfile.DIRTYPE, 0o755))
        for name, data in members:
            info = tar_info(name, tarfile.REGTYPE, 0o644)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    os.replace(tmp, args.out)
    print(f"{ref} {manifest_digest}")


def chart_meta(chart_dir):
    """name, version and the other top-level scalar fields of Chart.yaml (a flat `key: value` read)."""
    meta = {}
    try:
        with open(os.path.join(chart_dir, "Chart.yaml"), encoding="utf-8") as f:
            for line in f:
                if not line or line[0] in " \t#-\n" or ":" not in line:
                    continue
                key, _, value = line.partition(":")
                value = value.strip()
                if value and value[0] in "\"'" and value[-1] == value[0]:
                    value = value[1:-1]
                if value:
                    meta[key.strip()] = value
    except OSError as e:
        fail(f"{chart_dir}: {e}")
    for key in ("apiVersion", "name", "version"):
        if key not in meta:
            fail(f"{chart_dir}/Chart.yaml has no {key}")
    return meta


def package(chart_dir, name, out_path):
    """A .tgz with every file of the chart under NAME/, like `helm package` lays it out."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for root, dirnames, filenames in os.walk(chart_dir):
            dirnames.sort()
            for fn in sorted(filenames):
                path = os.path.join(root, fn)
                rel = os.path.relpath(path, chart_dir)
                with open(path, "rb") as f:
                    data = f.read()
                info = tar_info(f"{name}/{rel}", tarfile.REGTYPE, 0o644)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    data = gzip.compress(buf.getvalue(), mtime=0)
    with open(out_path, "wb") as f:
        f.write(data)
    return hashlib.sha256(data).hexdigest()


def q(s):
    return json.dumps(str(s))  # a JSON string is a valid YAML double-quoted scalar


def cmd_charts(args):
    charts = []
    for entry in sorted(os.listdir(args.src)):
        d = os.path.join(args.src, entry)
        if not os.path.isfile(os.path.join(d, "Chart.yaml")):
            continue
        charts.append(d)
        sub = os.path.join(d, "charts")
        if os.path.isdir(sub):
            charts += [os.path.join(sub, s) for s in sorted(os.listdir(sub)) if os.path.isfile(os.path.join(sub, s, "Chart.yaml"))]
    os.makedirs(args.out, exist_ok=True)
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    entries = {}
    for d in charts:
        meta = chart_meta(d)
        name, version = meta["name"], meta["version"]
        file = f"{name}-{version}.tgz"
        if any(e["version"] == version for e in entries.get(name, [])):
            fail(f"{d}: chart {name} {version} is defined twice")
        digest = package(d, name, os.path.join(args.out, file))
        entries.setdefault(name, []).append(dict(meta, created=created, digest=digest, urls=[file]))
    lines = ["apiVersion: v1", "entries:"]
    for name in sorted(entries):
        lines.append(f"  {name}:")
        for e in sorted(entries[name], key=lambda e: e["version"], reverse=True):
            first = True
            for key in sorted(k for k in e if k != "urls"):
                lines.append(f"  {'- ' if first else '  '}{key}: {q(e[key])}")
                first = False
            lines.append("    urls:")
            lines += [f"    - {q(u)}" for u in e["urls"]]
    lines.append(f"generated: {q(created)}")
    tmp = os.path.join(args.out, "index.yaml.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, os.path.join(args.out, "index.yaml"))
    for name in sorted(entries):
        for e in entries[name]:
            print(f"{name} {e['version']}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    img = sub.add_parser("image", help="write an OCI image layout tarball")
    img.add_argument("--ref", required=True)
    img.add_argument("--out", required=True)
    img.add_argument("--user")
    img.add_argument("--entrypoint", action="append", default=[])
    img.add_argument("--cmd", action="append", default=[])
    img.add_argument("--env", action="append", default=[])
    img.add_argument("--file", action="append", default=[])
    img.add_argument("--dir", action="append", default=[])
    img.add_argument("--symlink", action="append", default=[])
    ch = sub.add_parser("charts", help="package charts into a static Helm repository")
    ch.add_argument("--src", required=True)
    ch.add_argument("--out", required=True)
    args = p.parse_args()
    {"image": cmd_image, "charts": cmd_charts}[args.command](args)


if __name__ == "__main__":
    main()
