package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// machine describes where the benchmarks ran.
type machine struct {
	CPU       string
	Cores     int
	RAM       string
	Go        string
	OS        string
	Kernel    string
	Date      time.Time
	Commit    string
	Services  string
	LoadStart string
	LoadEnd   string
	Elapsed   time.Duration
}

func machineInfo(root string) machine {
	m := machine{Cores: runtime.NumCPU(), Date: time.Now().UTC(), LoadStart: loadAvg()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if m.CPU == "" {
		m.CPU = runtime.GOARCH
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				f := strings.Fields(v)
				if kb, err := strconv.ParseFloat(f[0], 64); err == nil {
					m.RAM = fmt.Sprintf("%.1f GiB", kb/(1<<20))
				}
			}
		}
	}
	m.Go = strings.TrimSpace(cmdOut(root, "go", "env", "GOVERSION")) + " " + runtime.GOOS + "/" + runtime.GOARCH
	if b, err := os.ReadFile("/etc/os-release"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
				m.OS = strings.Trim(v, `"`)
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	m.Commit = strings.TrimSpace(cmdOut(root, "git", "rev-parse", "--short=12", "HEAD"))
	if strings.TrimSpace(cmdOut(root, "git", "status", "--porcelain", "--untracked-files=no")) != "" {
		m.Commit += " with uncommitted changes"
	}
	m.Services = serviceVersions(root)
	return m
}

func cmdOut(dir, name string, args ...string) string {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, _ := cmd.Output()
	return string(out)
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// serviceVersions names the services the benchmarks ran against.
func serviceVersions(root string) string {
	mq := strings.TrimSpace(strings.SplitN(cmdOut(root, "mosquitto", "-h"), "\n", 2)[0])
	mq = strings.TrimPrefix(mq, "mosquitto version ")
	pulsar := "?"
	port := os.Getenv("EDGE_PULSAR_HTTP_PORT")
	if port == "" {
		port = "18080"
	}
	c := http.Client{Timeout: 5 * time.Second}
	if resp, err := c.Get("http://127.0.0.1:" + port + "/admin/v2/brokers/version"); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		pulsar = strings.Trim(strings.TrimSpace(string(b)), `"`)
	}
	cassandra := scriptVersion(filepath.Join(root, "test", "cassandra.sh"), "EDGE_CASSANDRA_VERSION")
	return fmt.Sprintf("Mosquitto %s, Pulsar %s standalone, Cassandra %s (all on loopback, shared with other work on the machine)", mq, pulsar, cassandra)
}

// scriptVersion reads VERSION="${ENV:-x.y.z}" from a service script.
func scriptVersion(path, env string) string {
	if v := os.Getenv(env); v != "" {
		return v
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "?"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if _, rest, ok := strings.Cut(line, env+":-"); ok && strings.HasPrefix(line, "VERSION=") {
			return strings.TrimRight(rest, `}"`)
		}
	}
	return "?"
}

// binSize is the size of one build of cmd/gateway.
type binSize struct {
	Target string
	Bytes  int64
}

// binarySizes builds cmd/gateway stripped (-ldflags '-s -w', CGO off) for
// linux/amd64 and linux/arm64.
func binarySizes(root string) ([]binSize, error) {
	dir, err := os.MkdirTemp("", "edgegw-size-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	var out []binSize
	for _, arch := range []string{"amd64", "arm64"} {
		bin := filepath.Join(dir, "gateway-"+arch)
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, "./cmd/gateway")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
		if b, err := cmd.CombinedOutput(); err != nil {
			return out, fmt.Errorf("go build linux/%s: %v\n%s", arch, err, b)
		}
		fi, err := os.Stat(bin)
		if err != nil {
			return out, err
		}
		out = append(out, binSize{Target: "linux/" + arch, Bytes: fi.Size()})
	}
	return out, nil
}
