#!/usr/bin/env bash
# Fetch the vega, vega-lite and vega-embed builds that `dvc plots show` pages load, so they draw offline.
#   bash scripts/fetch-plot-scripts.sh      (scripts/setup.sh runs it; safe to run again)
# DVC's own page asks a public CDN for these scripts; .dvc/plots.html (plots.html_template in
# .dvc/config) loads these local copies instead. The versions are those dvc-render 1.0.2 names
# (dvc_render/vega.py, VegaRenderer.SCRIPTS). Each npm tarball is checked against its pinned
# sha256 (the same file as npm's own sha512 integrity) before its build/<name>.min.js is taken.
# DEST=folder puts the scripts elsewhere (default .dvc/vega, ignored by git);
# REGISTRY=url fetches from an npm mirror (default https://registry.npmjs.org).
set -euo pipefail
cd "$(dirname "$0")/.."

case "${1:-}" in
  "") ;;
  -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "error: unknown option $1 (this script takes none; DEST= and REGISTRY= choose the folder and mirror)" >&2; exit 2 ;;
esac
command -v curl >/dev/null || { echo "error: curl is needed (apt-get install curl)" >&2; exit 2; }

DEST=${DEST:-.dvc/vega}
REGISTRY=${REGISTRY:-https://registry.npmjs.org}

# package, version, sha256 of its npm tarball, sha256 of build/<package>.min.js in it
PINS="
vega       5.20.2 d77deab01d6104b1239228720721f93003e60797d2faced7ffdd759fa70f989d 4794d0169cb1f3ebad8117fe98ba5bd652dd725905ec0384e832391dbccb03be
vega-lite  5.2.0  f64ca4745f043447ac86b67dc9e9592ec2b85ac8b8dafc35faf970f142463e4b d73157451b3978015ab31dacd55ff90d986ab8663fc0abed50f97b3cd90002cb
vega-embed 6.18.2 93aeee312e92077b0252ef026c0fe0ec8fa430c19825aeada6cd3a6804e68e1b 1ba9826431ddc9805e815ad92acc811c819f2bfd32bda2a128b8c4b5070fab5e
"

sha256() { sha256sum "$1" | cut -d' ' -f1; }

mkdir -p "$DEST"
work=$(mktemp -d "$DEST/.fetch.XXXXXX")  # beside DEST: the final rename stays on one file system
trap 'rm -rf "$work"' EXIT

while read -r pkg version tar_sha js_sha; do
  [ -n "$pkg" ] || continue
  target="$DEST/$pkg.min.js"
  if [ -f "$target" ] && [ "$(sha256 "$target")" = "$js_sha" ]; then
    echo "[plot-scripts] $target: $pkg $version, already here"
    continue
  fi
  url="$REGISTRY/$pkg/-/$pkg-$version.tgz"
  echo "[plot-scripts] fetching $url"
  if ! curl -fsSL --retry 2 -o "$work/$pkg.tgz" "$url"; then
    echo "error: could not download $url; check the network, or set REGISTRY= to an npm mirror" >&2
    exit 1
  fi
  got=$(sha256 "$work/$pkg.tgz")
  if [ "$got" != "$tar_sha" ]; then
    echo "error: $url has sha256 $got, expected $tar_sha; nothing was installed (a mirror serving another file?)" >&2
    exit 1
  fi
  tar -xzmf "$work/$pkg.tgz" -C "$work" "package/build/$pkg.min.js"
  [ "$(sha256 "$work/package/build/$pkg.min.js")" = "$js_sha" ] || {
    echo "error: build/$pkg.min.js in $url is not the pinned file" >&2
    exit 1
  }
  mv "$work/package/build/$pkg.min.js" "$target"  # a reader never sees half a script
  echo "[plot-scripts] $target: $pkg $version"
done <<< "$PINS"
