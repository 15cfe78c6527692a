package status

import (
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/edgegw/gateway/test/harness"
)

const hostile = `<script>alert(1)</script>`

// screenshotFile is the committed screenshot, rewritten when
// EDGE_UPDATE_SCREENSHOT=1.
const screenshotFile = "testdata/statuspage.png"

// The status page of a real gateway, with scans published through the real
// Mosquitto and forwarded to the real Pulsar, rendered by headless Chromium
// at a phone's size: it shows the gateway, its streams and the scans, and a
// hostile barcode as text.
func TestStatusPageInChromium(t *testing.T) {
	s := harness.NewSetup(t, "statuspage", harness.Options{})
	bin := chromium(t)
	s.Gateway.Start()

	pub := harness.NewPublisher(t, s.MQTT, s.ID+"-pub")
	var barcodes []string
	for n := 1; n <= 3; n++ {
		pub.MustPublish(s.ScanTopic("dock1", "scn-01"), harness.ScanPayload("pub", n))
		barcodes = append(barcodes, fmt.Sprintf("00%018d", n))
	}
	evil, _ := json.Marshal(map[string]any{"barcode": hostile, "symbology": "GS1-128", "ts": time.Now().UTC().Format(time.RFC3339Nano), "pub": "evil", "n": 1})
	pub.MustPublish(s.ScanTopic("dock2", "scn-02"), evil)
	reading, _ := json.Marshal(map[string]any{"value": 4.25, "ts": time.Now().UTC().Format(time.RFC3339Nano), "pub": "temp", "n": 1})
	pub.MustPublish(s.Root+"/sensor/temp-01", reading)

	page := "http://" + s.Gateway.HTTP + "/"
	// The scans are committed and noted, and have reached Pulsar.
	s.Gateway.Eventually(time.Minute, "the page lists the scans (noted through the g.observe hook in edge/pipeline.go) and the uplink is online", func() bool {
		body, ok := fetch(page)
		return ok && strings.Contains(body, barcodes[2]) && strings.Contains(body, "alert(1)") &&
			strings.Contains(body, `<span class="state ok">online</span>`)
	})
	s.Gateway.Eventually(time.Minute, "buffer drained", s.Gateway.Drained)

	dom := headless(t, bin, page, "--dump-dom")
	for _, want := range []string{
		`<h1 id="gateway">` + s.ID + `</h1>`,
		`id="stream-scans"`, `<span class="name">scans</span>`,
		`id="stream-telemetry"`, `<span class="name">telemetry</span>`,
		`<span class="state ok">online</span>`,
		barcodes[0], barcodes[2], "dock1-scn-01",
		`&lt;script&gt;alert(1)&lt;/script&gt;`, // the hostile barcode, as text
		`<svg class="spark"`,
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("rendered DOM lacks %q", want)
		}
	}
	if regexp.MustCompile(`(?i)<script`).MatchString(dom) {
		t.Errorf("rendered DOM has a script element:\n%s", dom)
	}
	if t.Failed() {
		t.Fatalf("rendered DOM:\n%s", dom)
	}

	// A phone-sized screenshot, kept as an artifact.
	shot := filepath.Join(t.TempDir(), "statuspage.png")
	if dir := os.Getenv("EDGE_ARTIFACT_DIR"); dir != "" {
		shot = filepath.Join(dir, "statuspage.png")
	}
	if os.Getenv("EDGE_UPDATE_SCREENSHOT") == "1" {
		shot, _ = filepath.Abs(screenshotFile)
	}
	headless(t, bin, page, "--screenshot="+shot, "--window-size=412,915")
	checkScreenshot(t, shot, 412, 915)
	t.Logf("screenshot of the status page: %s", shot)
}

func fetch(url string) (string, bool) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return "", false
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err == nil && resp.StatusCode == 200
}

// checkScreenshot checks that path is a w×h PNG with something drawn on it:
// the page's background, its cards and its text are not all one colour.
func checkScreenshot(t *testing.T, path string, w, h int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot %s: %v", path, err)
	}
	if b := img.Bounds(); b.Dx() != w || b.Dy() != h {
		t.Fatalf("screenshot is %dx%d, want %dx%d", b.Dx(), b.Dy(), w, h)
	}
	colours := map[[3]uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 3 {
		for x := b.Min.X; x < b.Max.X; x += 3 {
			r, g, bl, _ := img.At(x, y).RGBA()
			colours[[3]uint32{r >> 8, g >> 8, bl >> 8}] = true
		}
	}
	if len(colours) < 20 {
		t.Fatalf("screenshot has %d colours: nothing rendered?", len(colours))
	}
	var _ image.Image = img
}
