#!/bin/sh
# dracut module helpers.

# Is the module needed on this host?
check() {
    require_binaries mount || return 1
    return 0
}

install() {
    inst_hook() { echo "$1"; }
    inst_hook cmdline
}

function depends {
    echo base
}

check && install
