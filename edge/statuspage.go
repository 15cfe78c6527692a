package edge

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"
)

//go:embed templates/status.html
var templateFS embed.FS

// statusPage is the local status page: server-rendered, no script, no
// external asset, one column for a phone, refreshing itself.
var statusPage = template.Must(template.New("status.html").Funcs(template.FuncMap{
	"clock":     clockTime,
	"fullclock": fullClock,
	"since":     sinceText,
	"uptime":    func(now, t time.Time) string { return durText(now.Sub(t)) },
	"secs":      func(s float64) string { return durText(time.Duration(s * float64(time.Second))) },
	"num":       numText,
	"bytes":     bytesText,
}).ParseFS(templateFS, "templates/status.html"))

// pageRefresh is the page's meta refresh, in seconds.
const pageRefresh = 10

// pageCSP allows nothing but the page's own inline style: no script runs
// even if something hostile got past the escaping.
const pageCSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// pageView is what the template renders.
type pageView struct {
	Status
	Now        time.Time
	RefreshSec int
	Streams    []pageStream // shadows Status.Streams
	Scans      []ScanNote
}

type pageStream struct {
	StreamStatus
	Chart sparkline
}

func (g *Gateway) pageView() pageView {
	st := g.Status()
	now := g.now()
	v := pageView{Status: st, Now: now, RefreshSec: pageRefresh, Scans: g.metrics.scans.list()}
	for _, s := range st.Streams {
		hist := append(g.metrics.history.get(s.Name), backlogSample{At: now, Depth: s.Depth, Bytes: s.Bytes})
		v.Streams = append(v.Streams, pageStream{StreamStatus: s, Chart: newSparkline(hist, now, historyLen*sampleEvery)})
	}
	return v
}

func (g *Gateway) serveStatusPage(w http.ResponseWriter, r *http.Request) {
	var b bytes.Buffer
	if err := statusPage.Execute(&b, g.pageView()); err != nil {
		g.log.Error("status page", "component", "http", "err", err)
		http.Error(w, "status page failed; see the log", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", pageCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	_, _ = b.WriteTo(w)
}

// sparkline is a backlog chart as SVG polyline points, in a W×H box.
type sparkline struct {
	W, H   int
	Points string // "x,y x,y …"; empty when there is nothing to draw
	Area   string // Points closed along the bottom edge
	Max    int64
	Label  string
}

// newSparkline plots samples (oldest first) over the window ending at now;
// the y axis runs from 0 to the largest depth.
func newSparkline(samples []backlogSample, now time.Time, window time.Duration) sparkline {
	const w, h, pad = 240, 48, 2
	s := sparkline{W: w, H: h}
	start := now.Add(-window)
	var in []backlogSample
	for _, p := range samples {
		if !p.At.Before(start) && !p.At.After(now) {
			in = append(in, p)
		}
		s.Max = max(s.Max, p.Depth)
	}
	s.Label = fmt.Sprintf("buffered events over the last %d minutes, at most %d", int(window/time.Minute), s.Max)
	if len(in) == 0 {
		return s
	}
	if len(in) == 1 { // a flat line from the window's start
		in = append([]backlogSample{{At: start, Depth: in[0].Depth}}, in...)
	}
	var pts []string
	for _, p := range in {
		x := float64(w) * float64(p.At.Sub(start)) / float64(window)
		y := float64(h - pad)
		if s.Max > 0 {
			y = pad + float64(h-2*pad)*(1-float64(p.Depth)/float64(s.Max))
		}
		pts = append(pts, strconv.FormatFloat(x, 'f', 1, 64)+","+strconv.FormatFloat(y, 'f', 1, 64))
	}
	s.Points = strings.Join(pts, " ")
	first := strings.SplitN(pts[0], ",", 2)[0]
	last := strings.SplitN(pts[len(pts)-1], ",", 2)[0]
	s.Area = first + "," + strconv.Itoa(h) + " " + s.Points + " " + last + "," + strconv.Itoa(h)
	return s
}

// clockTime is t in the gateway's time zone, short: the time of day when it
// is the day of now, else the date too.
func clockTime(now, t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	t, now = t.Local(), now.Local()
	if y, m, d := t.Date(); y == now.Year() && m == now.Month() && d == now.Day() {
		return t.Format("15:04:05")
	}
	return t.Format("2006-01-02 15:04")
}

// fullClock is t with date and time zone.
func fullClock(t time.Time) string { return t.Local().Format("2006-01-02 15:04:05 MST") }

// sinceText is how long ago t was, as of now ("3m 20s ago").
func sinceText(now, t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	d := now.Sub(t)
	if d < 0 {
		return "just now"
	}
	return durText(d) + " ago"
}

// durText is d rounded for people: "45s", "3m 20s", "5h 02m", "3d 4h".
func durText(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm %02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh %02dm", int(d.Hours()), int(d.Minutes())%60)
	default:
		return fmt.Sprintf("%dd %dh", int(d.Hours())/24, int(d.Hours())%24)
	}
}

// numText groups digits by thousands with narrow spaces: 1 234 567.
func numText(v any) string {
	var s string
	switch n := v.(type) {
	case int:
		s = strconv.Itoa(n)
	case int64:
		s = strconv.FormatInt(n, 10)
	case uint64:
		s = strconv.FormatUint(n, 10)
	default:
		return fmt.Sprint(v)
	}
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteString("\u202f")
		}
		b.WriteRune(c)
	}
	return b.String()
}

func bytesText(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
