# syntax=docker/dockerfile:1
# escape=\
ARG BASE=busybox
ARG VERSION
FROM --platform=linux/amd64 ${BASE}:latest AS Build
MAINTAINER someone <a@b.c>
RUN echo one && \
    # a comment inside a continuation
    echo two
RUN ["/bin/sh", "-c", "echo exec"]
RUN --network=none [not json
CMD ["sh"]
ENTRYPOINT exec top -b
WORKDIR /app/$VERSION
COPY --from=base --chown=1:2 --chmod=640 --link a b* /dst/
ADD --chown=user x.tar.gz /opt/
COPY --parents --link=false ./src/./pkg/*.json /app/
ADD --checksum=sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d https://example.com/f.tar.gz /f/
ENV A=1 B="two words" C=three\ words
ENV LEGACY value with spaces
ARG X=1 Y
LABEL a=b "c d"="e f"
EXPOSE 80/tcp 443
USER nobody:nogroup
VOLUME ["/data", "/logs"]
VOLUME /one /two
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=3s --start-period=1m --start-interval=1s --retries=3 CMD curl -f http://localhost/
HEALTHCHECK NONE
ONBUILD RUN echo triggered
FROM scratch
copy --link ["a b", "/c"]
