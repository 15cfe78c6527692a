package firmware

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// Package versions the tests build: a first install and an upgrade.
const (
	debVersion1 = "0.0.0~git20260101000000.0123456789ab"
	debVersion2 = "0.0.0~git20260102000000.ba9876543210"
	sourceEpoch = "1767225600" // 2026-01-01T00:00:00Z
)

// debArch is the Debian architecture packages.sh maps each target to.
var debArch = map[string]string{"linux/arm64": "arm64", "linux/arm/v7": "armhf", "linux/arm/v6": "armel", "linux/amd64": "amd64"}

var debs struct {
	mu    sync.Mutex
	built map[string]string // "version target" -> path
}

// deb returns the package of version for target, built with packages.sh
// from the shared firmware into dist/<version>/.
func deb(t *testing.T, version, target string) string {
	t.Helper()
	b := firmware(t)
	debs.mu.Lock()
	defer debs.mu.Unlock()
	key := version + " " + target
	if p, ok := debs.built[key]; ok {
		return p
	}
	dist := filepath.Join(filepath.Dir(b.dist), "debs-"+version)
	if err := os.MkdirAll(filepath.Join(dist, targetDir(target)), 0o755); err != nil {
		t.Fatal(err)
	}
	// packages.sh reads the binaries from DIST/<target>/.
	for _, cmd := range []string{"gateway", "gatewayctl"} {
		if err := copyFile(b.bin(target, cmd), filepath.Join(dist, targetDir(target), cmd)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := run(b.src, []string{"DIST=" + dist, "FIRMWARE_TARGETS=" + target, "DEB_VERSION=" + version, "SOURCE_DATE_EPOCH=" + sourceEpoch},
		"packaging/packages.sh"); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dist, fmt.Sprintf("edgegw_%s_%s.deb", version, debArch[target]))
	if _, err := os.Stat(p); err != nil {
		t.Fatal(err)
	}
	if debs.built == nil {
		debs.built = map[string]string{}
	}
	debs.built[key] = p
	return p
}

func dpkgDeb(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("dpkg-deb", args...).Output()
	if err != nil {
		t.Fatalf("dpkg-deb %s: %v", strings.Join(args, " "), err)
	}
	return string(out)
}

// The package's control data, file list, modes and conffiles, for each
// ARM architecture; its binaries are the firmware, byte for byte.
func TestPackageContents(t *testing.T) {
	for _, target := range qemuTargets {
		t.Run(debArch[target], func(t *testing.T) {
			path := deb(t, debVersion1, target)
			fields := map[string]string{
				"Package":      "edgegw",
				"Version":      debVersion1,
				"Architecture": debArch[target],
				"Maintainer":   "edgegw maintainers <maintainers@edgegw.invalid>",
				"Section":      "net",
				"Depends":      "", // static binaries
				"Pre-Depends":  "",
			}
			for f, want := range fields {
				if got := strings.TrimSpace(dpkgDeb(t, "--field", path, f)); got != want {
					t.Errorf("control field %s = %q, want %q", f, got, want)
				}
			}
			if d := dpkgDeb(t, "--field", path, "Description"); !strings.HasPrefix(d, "Edge gateway for warehouse docks and delivery vehicles\n") {
				t.Errorf("Description %q", d)
			}
			if got := dpkgDeb(t, "--info", path, "conffiles"); got != "/etc/edgegw/gateway.yaml\n" {
				t.Errorf("conffiles %q, want /etc/edgegw/gateway.yaml only", got)
			}
			for _, s := range []string{"preinst", "postinst", "prerm", "postrm"} {
				if !strings.HasPrefix(dpkgDeb(t, "--info", path, s), "#!/bin/sh\n") {
					t.Errorf("maintainer script %s missing or not a shell script", s)
				}
			}

			want := map[string]string{ // path -> mode owner/group
				"./usr/bin/gateway":                              "-rwxr-xr-x root/root",
				"./usr/bin/gatewayctl":                           "-rwxr-xr-x root/root",
				"./lib/systemd/system/edgegw.service":            "-rw-r--r-- root/root",
				"./etc/edgegw/gateway.yaml":                      "-rw-r--r-- root/root",
				"./usr/share/doc/edgegw/README.md":               "-rw-r--r-- root/root",
				"./usr/share/doc/edgegw/examples/warehouse.yaml": "-rw-r--r-- root/root",
				"./usr/share/doc/edgegw/examples/vehicle.yaml":   "-rw-r--r-- root/root",
			}
			got := map[string]string{}
			line := regexp.MustCompile(`^(\S+) (\S+) +\d+ \S+ \S+ (\S+)$`)
			for _, l := range strings.Split(strings.TrimSpace(dpkgDeb(t, "--contents", path)), "\n") {
				m := line.FindStringSubmatch(l)
				if m == nil {
					t.Fatalf("dpkg-deb --contents line %q", l)
				}
				if strings.HasPrefix(m[1], "d") {
					if m[1] != "drwxr-xr-x" || m[2] != "root/root" {
						t.Errorf("directory %s: %s %s", m[3], m[1], m[2])
					}
					continue
				}
				got[m[3]] = m[1] + " " + m[2]
			}
			for p, w := range want {
				if got[p] != w {
					t.Errorf("%s: %q, want %q", p, got[p], w)
				}
			}
			for p := range got {
				if _, ok := want[p]; !ok {
					t.Errorf("unexpected file %s", p)
				}
			}

			x := t.TempDir()
			if _, err := run(x, nil, "dpkg-deb", "--extract", path, x); err != nil {
				t.Fatal(err)
			}
			b := firmware(t)
			for _, cmd := range []string{"gateway", "gatewayctl"} {
				if sha256File(t, filepath.Join(x, "usr/bin", cmd)) != sha256File(t, b.bin(target, cmd)) {
					t.Errorf("/usr/bin/%s differs from the firmware build", cmd)
				}
			}
			for _, f := range []string{"lib/systemd/system/edgegw.service", "etc/edgegw/gateway.yaml"} {
				src := map[string]string{"lib/systemd/system/edgegw.service": "packaging/edgegw.service", "etc/edgegw/gateway.yaml": "packaging/gateway.yaml"}[f]
				if sha256File(t, filepath.Join(x, f)) != sha256File(t, filepath.Join(b.src, src)) {
					t.Errorf("/%s differs from %s", f, src)
				}
			}
		})
	}
}

// Building the same version twice gives the same package, byte for byte.
func TestPackageReproducible(t *testing.T) {
	first := deb(t, debVersion1, qemuTargets[0])
	b := firmware(t)
	dist := t.TempDir()
	target := qemuTargets[0]
	if err := os.MkdirAll(filepath.Join(dist, targetDir(target)), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"gateway", "gatewayctl"} {
		if err := copyFile(b.bin(target, cmd), filepath.Join(dist, targetDir(target), cmd)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := run(b.src, []string{"DIST=" + dist, "FIRMWARE_TARGETS=" + target, "DEB_VERSION=" + debVersion1, "SOURCE_DATE_EPOCH=" + sourceEpoch},
		"packaging/packages.sh"); err != nil {
		t.Fatal(err)
	}
	second := filepath.Join(dist, filepath.Base(first))
	if a, b := sha256File(t, first), sha256File(t, second); a != b {
		t.Errorf("two builds of %s differ: %s vs %s", filepath.Base(first), a, b)
	}
}

// The systemd unit has the hardening and the device policy the package
// promises, and systemd-analyze finds nothing wrong with it.
func TestSystemdUnit(t *testing.T) {
	b := firmware(t)
	unit, err := os.ReadFile(filepath.Join(b.src, "packaging", "edgegw.service"))
	if err != nil {
		t.Fatal(err)
	}
	lines := map[string]bool{}
	for _, l := range strings.Split(string(unit), "\n") {
		lines[strings.TrimSpace(l)] = true
	}
	for _, want := range []string{
		"User=edgegw", "Group=edgegw", "SupplementaryGroups=gpio i2c",
		"ExecStart=/usr/bin/gateway launch -config /etc/edgegw/gateway.yaml -firmware-dir /var/lib/edgegw/firmware",
		"ExecReload=/bin/kill -HUP $MAINPID", "Restart=on-failure", "RestartPreventExitStatus=2", "KillMode=mixed", "TimeoutStopSec=40",
		"StateDirectory=edgegw", "StateDirectoryMode=0700", "ConfigurationDirectory=edgegw",
		"NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
		"DevicePolicy=closed", "DeviceAllow=char-gpiochip rw", "DeviceAllow=char-i2c rw",
		"WantedBy=multi-user.target",
	} {
		if !lines[want] {
			t.Errorf("unit lacks %q", want)
		}
	}
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze not installed: unit syntax not verified")
	}
	// verify checks that ExecStart= is executable: point it at a firmware binary.
	dir := t.TempDir()
	verify := filepath.Join(dir, "edgegw.service")
	if err := os.WriteFile(verify, []byte(strings.ReplaceAll(string(unit), "/usr/bin/gateway", b.bin(qemuTargets[0], "gateway"))), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _ := exec.Command("systemd-analyze", "verify", verify).CombinedOutput()
	if s := strings.TrimSpace(string(out)); s != "" {
		t.Errorf("systemd-analyze verify:\n%s", s)
	}
}

// scratchRoot is an empty system for dpkg --root: a dpkg database and
// the account files, nothing else.
func scratchRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates", "var/lib/dpkg/triggers", "var/log", "etc/systemd/system"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for f, content := range map[string]string{
		"var/lib/dpkg/status":    "",
		"var/lib/dpkg/available": "",
		"etc/passwd":             "root:x:0:0:root:/root:/bin/sh\n",
		"etc/group":              "root:x:0:\n",
		"etc/shadow":             "root:*:19000:0:99999:7:::\n",
		"etc/gshadow":            "root:*::\n",
	} {
		if err := os.WriteFile(filepath.Join(root, f), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// A real dpkg installs, upgrades, removes and purges the package in a
// scratch root (maintainer scripts run outside a chroot with DPKG_ROOT set):
// the user and groups appear, the unit is enabled, an edited config and the
// buffer survive the upgrade, remove keeps config and state, purge deletes
// the state, and nothing happens to this machine's own accounts.
func TestPackageLifecycle(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("dpkg --root needs root here")
	}
	if _, err := exec.LookPath("dpkg"); err != nil {
		t.Skip("no dpkg")
	}
	target := qemuTargets[0]
	v1, v2 := deb(t, debVersion1, target), deb(t, debVersion2, target)
	root := scratchRoot(t)
	hostPasswd, _ := os.ReadFile("/etc/passwd")
	hostGroup, _ := os.ReadFile("/etc/group")
	dpkg := func(args ...string) string {
		t.Helper()
		out, err := run(root, nil, "dpkg", append([]string{"--root=" + root, "--force-script-chrootless", "--log=" + filepath.Join(root, "var/log/dpkg.log")}, args...)...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	exists := func(p string) bool { _, err := os.Lstat(filepath.Join(root, p)); return err == nil }
	read := func(p string) string {
		b, err := os.ReadFile(filepath.Join(root, p))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	const (
		enabled = "etc/systemd/system/multi-user.target.wants/edgegw.service"
		masked  = "etc/systemd/system/edgegw.service"
		conf    = "etc/edgegw/gateway.yaml"
		state   = "var/lib/edgegw/buffer.db"
	)
	dpkg("--add-architecture", debArch[target])

	// Install.
	out := dpkg("--install", v1)
	if !strings.Contains(out, "systemctl start edgegw") {
		t.Errorf("first install does not say how to start the service:\n%s", out)
	}
	for _, p := range []string{"usr/bin/gateway", "usr/bin/gatewayctl", "lib/systemd/system/edgegw.service", conf} {
		if !exists(p) {
			t.Errorf("/%s not installed", p)
		}
	}
	if fi, err := os.Stat(filepath.Join(root, "usr/bin/gateway")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("/usr/bin/gateway: %v %v", fi.Mode(), err)
	}
	passwd, group := read("etc/passwd"), read("etc/group")
	user := regexp.MustCompile(`(?m)^edgegw:x:(\d+):(\d+):[^:]*:/var/lib/edgegw:/usr/sbin/nologin$`).FindStringSubmatch(passwd)
	if user == nil {
		t.Fatalf("no edgegw system user in passwd:\n%s", passwd)
	}
	if uid := user[1]; len(uid) > 3 {
		t.Errorf("edgegw uid %s is not a system uid", uid)
	}
	for _, g := range []string{"edgegw", "gpio", "i2c"} {
		if !regexp.MustCompile(`(?m)^` + g + `:x:\d{1,3}:`).MatchString(group) {
			t.Errorf("no %s system group:\n%s", g, group)
		}
	}
	if !regexp.MustCompile(`(?m)^edgegw:x:` + user[2] + `:`).MatchString(group) {
		t.Errorf("edgegw's primary group is not edgegw (gid %s):\n%s", user[2], group)
	}
	if dst, err := os.Readlink(filepath.Join(root, enabled)); err != nil || dst != "/lib/systemd/system/edgegw.service" {
		t.Errorf("unit not enabled: %q %v", dst, err)
	}

	// The gateway ran (its state) and the operator edited the config.
	if err := os.MkdirAll(filepath.Join(root, "var/lib/edgegw"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, state), []byte("events"), 0o600); err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(read(conf), "id: edgegw-unconfigured", "id: wh-east-dock03", 1)
	if err := os.WriteFile(filepath.Join(root, conf), []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}

	// Upgrade: config edit and state kept, still enabled, no second user.
	dpkg("--install", v2)
	if got := read(conf); got != edited {
		t.Errorf("upgrade replaced the edited config")
	}
	if !exists(state) || !exists(enabled) {
		t.Errorf("after upgrade: state kept %v, still enabled %v", exists(state), exists(enabled))
	}
	if n := strings.Count(read("etc/passwd"), "\nedgegw:"); n != 1 {
		t.Errorf("%d edgegw users after upgrade", n)
	}
	if st := dpkg("--status", "edgegw"); !strings.Contains(st, "Version: "+debVersion2) {
		t.Errorf("after upgrade:\n%s", st)
	}

	// Remove: programs gone; config, state and user kept; unit masked.
	dpkg("--remove", "edgegw")
	if exists("usr/bin/gateway") || exists("lib/systemd/system/edgegw.service") {
		t.Errorf("remove left the programs or the unit")
	}
	if !exists(state) || read(conf) != edited {
		t.Errorf("remove deleted the state (%v) or the config", exists(state))
	}
	if dst, _ := os.Readlink(filepath.Join(root, masked)); dst != "/dev/null" {
		t.Errorf("removed unit not masked: %q", dst)
	}

	// Purge: config and state gone, unit neither enabled nor masked; the
	// user stays (files may still belong to it).
	dpkg("--purge", "edgegw")
	for _, p := range []string{state, "var/lib/edgegw", conf, enabled, masked} {
		if exists(p) {
			t.Errorf("purge left /%s", p)
		}
	}
	if !strings.Contains(read("etc/passwd"), "\nedgegw:") {
		t.Errorf("purge deleted the edgegw user")
	}

	// This machine's accounts were not touched.
	if p, _ := os.ReadFile("/etc/passwd"); string(p) != string(hostPasswd) {
		t.Errorf("/etc/passwd of this machine changed")
	}
	if g, _ := os.ReadFile("/etc/group"); string(g) != string(hostGroup) {
		t.Errorf("/etc/group of this machine changed")
	}
}

// postrm alone: "remove" and "upgrade" keep /var/lib/edgegw, "purge" deletes
// it, and nothing outside DPKG_ROOT is touched.
func TestPostrmKeepsStateUnlessPurge(t *testing.T) {
	b := firmware(t)
	script := filepath.Join(b.src, "packaging", "scripts", "postrm")
	for _, tc := range []struct {
		arg  string
		kept bool
	}{{"remove", true}, {"upgrade", true}, {"failed-upgrade", true}, {"abort-install", true}, {"disappear", true}, {"purge", false}} {
		root := t.TempDir()
		if err := os.MkdirAll(filepath.Join(root, "var/lib/edgegw"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, "var/lib/edgegw/buffer.db"), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		env := []string{"DPKG_ROOT=" + root}
		if _, err := run(root, env, "/bin/sh", script, tc.arg, debVersion2); err != nil {
			t.Fatalf("postrm %s: %v", tc.arg, err)
		}
		_, err := os.Stat(filepath.Join(root, "var/lib/edgegw/buffer.db"))
		if kept := err == nil; kept != tc.kept {
			t.Errorf("postrm %s: state kept = %v, want %v", tc.arg, kept, tc.kept)
		}
	}
}
