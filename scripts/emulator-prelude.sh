# Sourced by the suites that run the daemon against the emulators and a
# receiver (chaos.sh, scaleout.sh): the repository as the working directory
# (`$root`), the emulators up, the receiver's virtual environment built.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
localstack/up.sh >/dev/null
bash scripts/receiver-venv.sh
