# Sourced by scripts/test: installs the Debian packages the tests drive (real clients and
# servers), when they are missing and we are allowed to (root, or sudo without a password).
# iproute2, nftables: network namespace tests (tests/netns.py, as root); tcpreplay: the live
# sensor's replay; wireguard-go, wireguard-tools: WireGuard mode (no kernel module needed);
# nodejs (with its npm): the local OpenID provider of the sign-in tests; logrotate: the shipped
# rotation config (tests/deploy/test_logrotate.py); systemd: systemd-analyze checks the units
DEBIAN_PACKAGES=(curl prometheus chromium postgresql nftables dnsmasq-base libpcap0.8 iproute2
    tcpreplay wireguard-go wireguard-tools nodejs logrotate systemd)

ensure_debian_packages() {
    local missing=() p
    for p in "${DEBIAN_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    # Debian's nodejs comes without npm (NodeSource's includes it): the OpenID provider of the
    # sign-in tests is installed with npm
    if ! command -v npm >/dev/null; then
        if dpkg-query -W -f='${Status}' nodejs 2>/dev/null | grep -q "install ok installed" &&
            dpkg-query -W -f='${Version}' nodejs 2>/dev/null | grep -q nodesource; then
            : # NodeSource's nodejs has npm; a missing npm there is not ours to fix
        else
            missing+=(npm)
        fi
    fi
    [[ ${#missing[@]} -eq 0 ]] && return 0
    local sudo=""
    if [[ $(id -u) -ne 0 ]]; then
        if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo="sudo -n"; else
            echo "error: the tests need these Debian packages: ${missing[*]}" >&2
            echo "install them as root: apt-get install -y ${missing[*]}" >&2
            return 1
        fi
    fi
    if ! command -v apt-get >/dev/null; then
        echo "error: the tests need: ${missing[*]} (no apt-get here: install them by hand)" >&2
        return 1
    fi
    echo "==> installing Debian packages: ${missing[*]}" >&2
    $sudo apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}
