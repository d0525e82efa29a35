# CPU image (default):
#   docker build -t gexinfer .
# CUDA image: a CUDA base image and PyTorch's CUDA wheel index, e.g.
#   docker build -t gexinfer:cuda \
#     --build-arg BASE_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04 \
#     --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128 .
# Run (data and outputs mounted from the host):
#   docker run --rm -v "$PWD/outputs:/app/outputs" -v /path/to/data:/data gexinfer \
#     python -m src.train data=gctx data.source.path=/data/file.gctx ...
# Both images run the same Python (3.11, the project's): it comes from the official python image, so a
# CUDA base (Ubuntu 24.04 ships 3.12) gets the same interpreter as the CPU image.
ARG BASE_IMAGE=python:3.11-slim
ARG PYTHON_IMAGE=python:3.11-slim
FROM ${PYTHON_IMAGE} AS python

FROM ${BASE_IMAGE}
COPY --from=python /usr/local /usr/local

ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV DEBIAN_FRONTEND=noninteractive \
    PIP_NO_CACHE_DIR=1 \
    PIP_EXTRA_INDEX_URL=${TORCH_INDEX_URL} \
    PYTHONUNBUFFERED=1

# make, and the shared libraries the copied Python links against (present on the python image already).
RUN apt-get update \
    && apt-get install -y --no-install-recommends make ca-certificates libssl3 libffi8 libsqlite3-0 zlib1g libbz2-1.0 liblzma5 \
    && rm -rf /var/lib/apt/lists/* \
    && ldconfig \
    && python3.11 --version

# Runs as an unprivileged user (uid 1000 by default, like the first user of most Linux hosts), so files
# written into a mounted outputs/ belong to that user, not to root. Another host uid:
#   docker build --build-arg UID=$(id -u) ...   or   docker run --user $(id -u):$(id -g) ...
ARG UID=1000
RUN useradd --create-home --uid ${UID} --shell /bin/bash gexinfer

WORKDIR /app
RUN chown gexinfer /app
USER gexinfer
COPY --chown=gexinfer pyproject.toml Makefile README.md ./
COPY --chown=gexinfer src ./src
COPY --chown=gexinfer gexinfer ./gexinfer
COPY --chown=gexinfer conf ./conf
COPY --chown=gexinfer tests ./tests
# The tutorial notebook: the tests run it.
COPY --chown=gexinfer docs/tutorial.ipynb ./docs/tutorial.ipynb
# The same installation as `make train` / `make test`: a .venv with the project (editable) in it.
RUN make install PYTHON=python3.11 && mkdir -p outputs
ENV PATH=/app/.venv/bin:$PATH

CMD ["python", "-m", "src.train"]
