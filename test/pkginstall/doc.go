// Package pkginstall tests the tqflow .deb that make package builds. One
// test installs it into a clean root with dpkg --root (no container),
// checks what it put where, upgrades it over a changed configuration and
// purges it. The other boots a minimal Debian with systemd as PID 1 in a
// container (debootstrapped and imported once, then reused), installs the
// .deb there, starts the unit against the sandbox, reads tqflow status and
// purges it. make test-package builds the package and runs them; without
// TQFLOW_DEB, and for the second without Docker or debootstrap, they skip,
// saying so (in CI, with CI set, they fail instead).
package pkginstall
