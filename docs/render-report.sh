#!/usr/bin/env bash
# See a Word report as its pages: DOCX -> PDF (LibreOffice, headless) -> one PNG per page (poppler).
#
#   docs/render-report.sh bao-cao.docx trang/          # trang/bao-cao.pdf, trang/page-1.png, ...
#   docs/render-report.sh bao-cao.docx trang/ 150      # the pages at 150 dpi (default 100)
#
# Needs: soffice (Debian: libreoffice-writer-nogui), pdftoppm (poppler-utils) and the fonts the
# report names (Times New Roman; Debian's fonts-dejavu / fonts-liberation stand in for it).
# Each run uses its own LibreOffice profile, so it works beside an open LibreOffice and in
# parallel runs. Prints the PDF, then each page's PNG, one path a line.
set -euo pipefail

if [ $# -lt 2 ] || [ $# -gt 3 ]; then
  echo "usage: $0 REPORT.docx OUTDIR [dpi]" >&2
  exit 2
fi
docx=$1
outdir=$2
dpi=${3:-100}
if [ ! -f "$docx" ]; then
  echo "$0: $docx: no such file; make it with: publisher report --format docx -o $docx" >&2
  exit 2
fi
case $dpi in
  '' | *[!0-9]*) echo "$0: dpi: $dpi is not a whole number (e.g. 100)" >&2; exit 2 ;;
esac
for tool in soffice pdftoppm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "$0: $tool is not installed; on Debian: apt-get install libreoffice-writer-nogui poppler-utils fonts-dejavu" >&2
    exit 3
  fi
done

mkdir -p "$outdir"
profile=$(mktemp -d "${TMPDIR:-/tmp}/render-report.XXXXXX")
trap 'rm -rf "$profile"' EXIT
name=$(basename "${docx%.*}")
soffice -env:UserInstallation="file://$profile" --headless --norestore \
  --convert-to pdf --outdir "$outdir" "$docx" >"$profile/soffice.log" 2>&1 || {
  cat "$profile/soffice.log" >&2
  echo "$0: LibreOffice could not convert $docx" >&2
  exit 1
}
pdf="$outdir/$name.pdf"
if [ ! -s "$pdf" ]; then
  cat "$profile/soffice.log" >&2
  echo "$0: LibreOffice wrote no $pdf" >&2
  exit 1
fi
rm -f "$outdir"/page-*.png
pdftoppm -r "$dpi" -png "$pdf" "$outdir/page"
for png in "$outdir"/page-0*.png; do  # page-01.png (padded past 9 pages) -> page-1.png
  [ -e "$png" ] || continue
  n=${png##*/page-}
  n=${n%.png}
  mv "$png" "$outdir/page-$((10#$n)).png"
done
echo "$pdf"
ls -1v "$outdir"/page-*.png
