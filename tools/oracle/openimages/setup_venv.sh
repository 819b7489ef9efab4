#!/usr/bin/env bash
# Creates the throwaway virtual environment in which make_oid_vectors.py runs the TF Object
# Detection API's own OpenImages code (hierarchy expansion, OpenImagesChallengeEvaluator,
# OpenImagesDetectionEvaluator) as an outside oracle for our OpenImages evaluator.
#
#   tools/oracle/openimages/setup_venv.sh   # venv at $OID_ORACLE_VENV (def. /tmp/oid-oracle-venv)
#   "$OID_ORACLE_VENV"/bin/python tools/oracle/openimages/make_oid_vectors.py
#
# Not the project's .venv and not used by CI: the vectors it writes are committed.
#
# What is installed and why:
# - tf-object-detection-api 0.1 (PyPI, Dec 2022): an sdist of tensorflow/models
#   research/object_detection packaged with the upstream TF2 setup.py. It is the newest PyPI
#   snapshot carrying object_detection/metrics/oid_challenge_evaluation{,_utils}.py and
#   OpenImagesChallengeEvaluator. Installed with --no-deps: its declared requirements
#   (apache-beam, tf-models-official, lvis, tensorflow_io, ...) are only needed for training;
#   the modules used here import only tensorflow.compat.v1, numpy, six, pandas, absl, protobuf
#   and pycocotools. The sdist's sha256 is checked.
# - tensorflow-cpu 2.13.1: a TF2 wheel for CPython 3.11 that still accepts numpy < 1.24.
# - numpy 1.23.5: utils/metrics.py uses np.float / np.bool / np.NAN (removed in numpy 1.24 / 2.0),
#   and, more importantly, numpy < 1.25 has no AVX-512 argsort: the TF code breaks score ties
#   with np.argsort's default (unstable) quicksort, and numpy >= 1.25 on an AVX-512 machine
#   orders ties differently (x86-simd-sort). With 1.23.5 the tie order is the same on every x86.
# - pandas 2.0.3, pycocotools 2.0.7 (imported by oid_challenge_evaluation_utils), six.
# Every other package is pinned to the versions this was made with (constraints below).
#
# CPython 3.11 is required: besides the wheels, the official expansion iterates Python sets of
# class ids, so the order of the copied rows in *_expanded.csv depends on the str hash
# (make_oid_vectors.py runs with PYTHONHASHSEED=0) and on the interpreter's hash function.
set -euo pipefail

VENV="${OID_ORACLE_VENV:-/tmp/oid-oracle-venv}"
PYTHON="${PYTHON:-python3}"

if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)'; then
  echo "setup_venv.sh: $PYTHON is $("$PYTHON" -V 2>&1); CPython 3.11 is required" \
       "(set PYTHON=/path/to/python3.11)" >&2
  exit 1
fi

"$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)

CONSTRAINTS="$(mktemp)"
HASHES="$(mktemp)"
trap 'rm -f "$CONSTRAINTS" "$HASHES"' EXIT
cat > "$CONSTRAINTS" <<'EOF'
absl-py==2.5.1
astunparse==1.6.3
certifi==2026.10.19.post1
cffi==2.1.1
charset-normalizer==3.5.3
contourpy==1.3.2
cryptography==50.0.2
cycler==0.12.1
flatbuffers==25.12.19
fonttools==4.68.0
gast==0.4.0
google-auth==2.63.0
google-auth-oauthlib==1.0.0
google-pasta==0.2.0
grpcio==1.74.0
h5py==3.16.0
idna==3.20
keras==2.13.1
kiwisolver==1.5.1
libclang==18.1.1
Markdown==3.11.3
MarkupSafe==3.0.4
matplotlib==3.10.9
numpy==1.23.5
oauthlib==4.0.1
opt_einsum==3.4.0
packaging==26.4
pandas==2.0.3
pillow==13.0.0
protobuf==4.25.9
pyasn1==0.6.5
pyasn1_modules==0.4.2
pycocotools==2.0.7
pycparser==3.12
pyparsing==3.3.3
python-dateutil==4.0.0
pytz==2026.6
requests==2.34.2
requests-oauthlib==2.0.0
six==1.16.0
tensorboard==2.13.0
tensorboard-data-server==0.7.2
tensorflow-cpu==2.13.1
tensorflow-estimator==2.13.0
tensorflow-io-gcs-filesystem==0.37.1
termcolor==3.3.0
typing_extensions==4.5.0
tzdata==2026.6
urllib3==2.8.0
Werkzeug==3.1.9
wrapt==2.5.2
EOF

"${PIP[@]}" install -c "$CONSTRAINTS" \
  tensorflow-cpu==2.13.1 numpy==1.23.5 pandas==2.0.3 pycocotools==2.0.7 six==1.16.0

SDIST_SHA256=84218d7f72d48d2a9035df044880694627baf1e9845ecc63a25b03190cd58257
echo "tf-object-detection-api==0.1 --hash=sha256:$SDIST_SHA256" > "$HASHES"
"${PIP[@]}" install --no-deps --require-hashes -r "$HASHES"

# The oracle's imports, as a check that the environment is complete.
(cd / && TF_CPP_MIN_LOG_LEVEL=3 "$VENV/bin/python" -c '
import numpy, pandas, tensorflow
from object_detection.dataset_tools import oid_hierarchical_labels_expansion
from object_detection.metrics import oid_challenge_evaluation, oid_challenge_evaluation_utils
from object_detection.utils import object_detection_evaluation, label_map_util
assert numpy.__version__ == "1.23.5", numpy.__version__
print("oid oracle venv ready:", "tensorflow", tensorflow.__version__, "numpy", numpy.__version__,
      "pandas", pandas.__version__)')
echo "run: $VENV/bin/python tools/oracle/openimages/make_oid_vectors.py"
