# The vetcd container image:   docker build -t vetcd:0.1.0 .
# k8s/statefulset.yaml runs it. One member, reachable from the host (its data under the container's
# /var/lib/vetcd, a volume):
#   docker run --rm -p 2379:2379 vetcd:0.1.0 --listen-client-urls http://0.0.0.0:2379 \
#     --advertise-client-urls http://127.0.0.1:2379
#
# Stage 1 builds the self-contained distribution with Maven (`mvn package` writes the jar, then
# bin/build-dist: a jlink'd JDK 25 runtime of the modules vetcd uses, and the start archive trained
# on that runtime).
FROM maven:3.9-eclipse-temurin-25 AS build
WORKDIR /src
COPY pom.xml README.md ./
COPY bin bin
COPY conf conf
COPY src src
ENV VETCD_DIST_JDK=/opt/java/openjdk
RUN mvn -B -q -Dmaven.test.skip=true package \
 && mkdir /dist \
 && tar -C /dist --strip-components=1 -xzf target/vetcd-*-linux-*.tar.gz

# Stage 2: the distribution alone on Debian's slim image (bash and coreutils for bin/vetcd): no JDK, no
# Maven. A user of its own, not root; the data directory is owned by it.
FROM debian:bookworm-slim
RUN groupadd --system --gid 10001 vetcd \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/vetcd --create-home vetcd
COPY --from=build /dist /opt/vetcd
ENV PATH=/opt/vetcd/bin:$PATH
USER 10001:10001
WORKDIR /var/lib/vetcd
VOLUME /var/lib/vetcd
EXPOSE 2379 2380 2381
# Every etcd flag and ETCD_* variable works (flags win over variables, as in etcd); the StatefulSet
# passes `statefulset` and its flags as args.
ENTRYPOINT ["vetcd"]
