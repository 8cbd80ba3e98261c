#!/usr/bin/env bash
# `vagrant validate` on deploy/vagrant/Vagrantfile. Neither VirtualBox nor the libvirt plugin
# needs to be installed: provider blocks are checked for the default provider chosen here.
set -euo pipefail
cd "$(dirname "$0")/../deploy/vagrant"
command -v vagrant >/dev/null || { echo "validate-vagrant: vagrant not found: apt-get install vagrant" >&2; exit 1; }
# A fresh home so the check does not depend on (or write to) the user's ~/.vagrant.d.
if [ -z "${VAGRANT_HOME:-}" ]; then
  VAGRANT_HOME=$(mktemp -d)
  trap 'rm -rf "$VAGRANT_HOME"' EXIT
  export VAGRANT_HOME
fi
# Keep vagrant's machine state out of the source tree.
export VAGRANT_DOTFILE_PATH=$VAGRANT_HOME/dotfile
export VAGRANT_DEFAULT_PROVIDER=${VAGRANT_DEFAULT_PROVIDER:-libvirt}
vagrant validate
