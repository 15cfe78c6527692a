// Command faulty is a broken gateway release for the OTA tests: built with
// -ldflags "-X main.mode=MODE", it exits at once (exit), never becomes
// ready (hang), or serves a ready /status.json whose uplink never comes
// online (offline), on the http.listen address of the -config file. It
// lives here, not in the gateway: the production binary has no fault
// switch.
package main

import (
	"encoding/json"
	"flag"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"go.yaml.in/yaml/v3"
)

var mode = "exit"

func main() {
	fs := flag.NewFlagSet("faulty", flag.ContinueOnError)
	cfg := fs.String("config", "", "")
	fs.String("firmware-dir", "", "")
	fs.String("stop-timeout", "", "")
	args := os.Args[1:]
	if len(args) > 0 && args[0] == "run" {
		args = args[1:]
	}
	_ = fs.Parse(args)
	switch mode {
	case "exit":
		os.Exit(1)
	case "hang": // not even SIGTERM stops it: the launcher has to kill it
		signal.Ignore(syscall.SIGTERM)
		never := make(chan os.Signal, 1)
		signal.Notify(never, syscall.SIGUSR2)
		<-never
		return
	}
	var c struct {
		HTTP struct {
			Listen string `yaml:"listen"`
		} `yaml:"http"`
	}
	data, err := os.ReadFile(*cfg)
	if err != nil || yaml.Unmarshal(data, &c) != nil {
		os.Exit(1)
	}
	go func() {
		_ = http.ListenAndServe(c.HTTP.Listen, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_ = json.NewEncoder(w).Encode(map[string]any{"ready": true, "uplink": map[string]any{"online": false, "last_error": "faulty build: no Pulsar client"}})
		}))
	}()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	<-sig
}
