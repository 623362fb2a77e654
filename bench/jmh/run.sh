#!/usr/bin/env bash
# Builds and runs the JMH benchmarks; the JSON result goes to bench/jmh/results.json.
#   bench/jmh/run.sh                       the whole suite (a few minutes)
#   bench/jmh/run.sh RangeBench -prof gc   JMH arguments pass through: a regex, profilers, -wi/-i/-f...
# The server's plain jar is installed into the local Maven repository first when it is missing or
# older than the sources (VETCD_BENCH_INSTALL=always forces it, =never skips it).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

# The project's own version is the only <version> at two spaces of indent in the server's pom.
version="$(sed -n 's:^  <version>\(.*\)</version>.*:\1:p' "$root/pom.xml" | head -n 1)"
if [ -z "$version" ]; then
  echo "run.sh: cannot read the project version from $root/pom.xml" >&2
  exit 1
fi
repo="${VETCD_M2_REPO:-$HOME/.m2/repository}"
jar="$repo/io/vetcd/vetcd/$version/vetcd-$version.jar"

install="${VETCD_BENCH_INSTALL:-auto}"
if [ "$install" = auto ]; then
  install=never
  if [ ! -f "$jar" ] || [ -n "$(find "$root/pom.xml" "$root/src/main" -newer "$jar" -print -quit)" ]; then
    install=always
  fi
fi
if [ "$install" = always ]; then
  echo "run.sh: installing vetcd $version into the local Maven repository (no tests)..." >&2
  (cd "$root" && mvn -B -q -DskipTests install)
fi

echo "run.sh: building bench/jmh/target/benchmarks.jar..." >&2
(cd "$here" && mvn -B -q -Dvetcd.version="$version" package)

exec java -jar "$here/target/benchmarks.jar" -rf json -rff "$here/results.json" "$@"
