# CPU image (default):
#   docker build -t gexinfer .
# CUDA image: a CUDA base image and PyTorch's CUDA wheel index, e.g.
#   docker build -t gexinfer:cuda \
#     --build-arg BASE_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04 \
#     --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128 .
# Run (data and outputs mounted from the host):
#   docker run --rm -v "$PWD/outputs:/app/outputs" -v /path/to/data:/data gexinfer \
#     python -m src.train data=gctx data.source.path=/data/file.gctx ...
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV DEBIAN_FRONTEND=noninteractive \
    PIP_NO_CACHE_DIR=1 \
    PIP_EXTRA_INDEX_URL=${TORCH_INDEX_URL} \
    PYTHONUNBUFFERED=1

# make, and Python itself on bases that lack it (the CUDA images).
RUN apt-get update \
    && apt-get install -y --no-install-recommends make \
    && (command -v python3 >/dev/null || apt-get install -y --no-install-recommends python3 python3-venv python3-pip) \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml Makefile README.md ./
COPY src ./src
COPY conf ./conf
COPY tests ./tests
# The same installation as `make train` / `make test`: a .venv with the project (editable) in it.
RUN make install PYTHON=python3 && mkdir -p outputs
ENV PATH=/app/.venv/bin:$PATH

CMD ["python", "-m", "src.train"]
