# One image for web, worker and beat; the gpu-worker builds it with EXTRAS=gpu on a CUDA base.
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}
ARG EXTRAS=""
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY captiondesk ./captiondesk
COPY labeling ./labeling
COPY review ./review
COPY routing ./routing
RUN pip install --upgrade pip && pip install ".${EXTRAS:+[$EXTRAS]}"
COPY . .
RUN useradd --create-home --uid 1000 captiondesk && mkdir -p /data/media /data/var \
    && chown -R captiondesk /data
USER captiondesk
ENV MEDIA_ROOT=/data/media CAPTIONDESK_VAR_DIR=/data/var
EXPOSE 8000
CMD ["gunicorn", "captiondesk.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", \
     "--limit-request-line", "4094", "--limit-request-fields", "100", \
     "--limit-request-field_size", "8190"]
