#!/usr/bin/env bash
# An SDK's own environment, layered over the project's:  bash hooks/sdk_venv.sh label|deploy [DIR] [BASE]
#
# BASE (default .venv) is the project's virtual environment (torch, MONAI, pydicom 3, numpy 2, image-guard). DIR
# (default .venv-<sdk>) gets only the SDK and what it adds, and sees BASE's packages after its own; BASE, frozen, is a
# constraint of every install, so nothing the project runs can move (a conflict fails here, loudly).
#
# label: MONAI Label 0.8.5 cannot be installed as is beside this project: its dependency pydicom-seg pins numpy < 2
#   and jsonschema < 4 and imports `pydicom._storage_sopclass_uids`, a private module pydicom 3 dropped, and it pulls
#   sam2 (a CUDA build, for MONAI Label's SAM2 models, which the AMIF app does not load). So monailabel and pydicom-seg
#   go in with --no-deps, the rest of monailabel's requirements resolve normally, and one .pth line maps the old
#   pydicom module name to `pydicom.uid`, which holds the same UIDs.
# deploy: monai-deploy-app-sdk (Holoscan; CUDA 13 wheels that also run on the CPU) installs as is.
set -euo pipefail
sdk=${1:?usage: sdk_venv.sh label|deploy [DIR] [BASE]}
dir=${2:-.venv-$sdk}
base=${3:-.venv}
repo=$(cd "$(dirname "$0")/.." && pwd)

"$base/bin/python" -m venv "$dir"
purelib() { "$1/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'; }
site=$(purelib "$dir")
# addsitedir, not a bare path line, so BASE's own .pth files (the editable image-guard install) are honoured too.
echo "import site; site.addsitedir('$(purelib "$base")')" > "$site/00_image_guard_base.pth"
"$base/bin/pip" freeze --exclude-editable | grep -v '^-e ' > "$dir/base-constraints.txt"
pip=("$dir/bin/pip" install --disable-pip-version-check -q -c "$repo/constraints.txt" -c "$dir/base-constraints.txt")

case "$sdk" in
label)
  echo "import sys, importlib; sys.modules.setdefault('pydicom._storage_sopclass_uids', importlib.import_module('pydicom.uid'))" \
    > "$site/zz_pydicom2_names.pth"
  "${pip[@]}" --no-deps "monailabel==0.8.5" "pydicom-seg==0.4.1"
  "${pip[@]}" "uvicorn>=0.29" "pydantic-settings>=2.2.1" "python-dotenv>=1.0.1" "fastapi>=0.110.2" \
    "python-multipart>=0.0.9" "httpx>=0.27" "schedule>=1.2.1" "dicomweb-client>=0.59.1" "timeloop>=1.0.2" \
    "expiringdict>=1.2.2" "expiring_dict>=1.1.0" "cachetools>=5.3.3" "watchdog>=4" "pynetdicom>=2.0.2" \
    "pynrrd>=1" "girder-client>=3.2.3" "einops>=0.7" "passlib>=1.7.4" "pyjwt>=2.8" "bcrypt>=4.1.2" \
    "shapely>=2.0.4" "requests-toolbelt>=1" "google-auth>=2.29" "filelock>=3.11" "scikit-learn" "psutil" \
    "fire" "itk>=5.3" "SimpleITK>=2.2"
  "$dir/bin/python" -c "import monailabel.interfaces.app, pydicom_seg, importlib.metadata as m; print('monailabel', m.version('monailabel'))"
  ;;
deploy)
  # tritonclient (the SDK's remote-inference client) wants older protobuf and ml-dtypes than BASE's ONNX tools: this
  # environment gets its own copies (they shadow BASE's here only; AMIF uses neither).
  sed -i -e '/^protobuf==/d' -e '/^ml[-_]dtypes==/d' "$dir/base-constraints.txt"
  "${pip[@]}" "monai-deploy-app-sdk==4.0.0" "highdicom>=0.22"  # MONAI imports every monai.* module; the SDK's DICOM ones need highdicom
  # The SDK installs into the `monai` package folder (monai/deploy), but MONAI itself lives in BASE and is a regular
  # package, so Python would never look here for monai.deploy: link MONAI's files in beside it, making one package.
  for f in "$(purelib "$base")"/monai/*; do [ -e "$site/monai/$(basename "$f")" ] || ln -s "$f" "$site/monai/"; done
  (ulimit -s 32768; "$dir/bin/python" -c "import monai.deploy.core, importlib.metadata as m; print('monai-deploy-app-sdk', m.version('monai-deploy-app-sdk'))")
  ;;
*) echo "sdk_venv.sh: unknown SDK '$sdk' (label or deploy)" >&2; exit 2 ;;
esac
