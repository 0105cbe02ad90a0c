// Package pkginstall tests the tqflow .deb that make package builds: it
// installs it into a clean root with dpkg (no container), checks what it
// put where, upgrades it over a changed configuration and purges it. make
// test-package builds the package and runs it; without TQFLOW_DEB the test
// skips, saying so.
package pkginstall
