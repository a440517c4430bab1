package main

import (
	"io"
	"mime"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"
)

// The hosted login page driven as a browser with JavaScript disabled would drive it: it reads
// the server-rendered HTML, submits the page's own forms with every field they carry (as a
// browser does: hidden inputs, the empty honeypot and proof-of-work fields, the pressed
// button), and follows the post/redirect/get answers itself, so that each step's status is
// checked and the final redirect to the relying party is returned, never followed.

// loopbackJar is a browser's cookie jar on loopback: browsers treat http://127.0.0.1 as a
// secure context and send it Secure cookies (the OP's __Host- cookies are Secure there), while
// Go's jar sends them over https only. (internal/app's tests have the same type; test files
// cannot share it across packages.)
type loopbackJar struct{ *cookiejar.Jar }

func (j loopbackJar) SetCookies(u *url.URL, cs []*http.Cookie) {
	for _, c := range cs {
		c.Secure = false
	}
	j.Jar.SetCookies(u, cs)
}

// newBrowser is a browser without JavaScript: a loopback cookie jar, and redirects left to the
// caller (browse follows the ones on the OP and stops at the first one that leaves it).
func newBrowser(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: loopbackJar{jar}, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// pageStep is one request of a no-JavaScript sign-in, as the test saw it.
type pageStep struct {
	Method      string
	Path        string // the path requested, without the query
	Status      int
	ContentType string // the media type, without parameters
	Screen      string // the page's data-screen, for HTML answers
	Location    string // the redirect target, resolved, for 3xx answers
	// FormAction and FormMethod are the submitted form's attributes, for POSTs.
	FormAction, FormMethod string
}

// page is one parsed HTML answer of the hosted page.
type page struct {
	URL    *url.URL
	Screen string
	// Error is the text of the page's alert, if it shows one.
	Error string
	Forms []form
}

// form is one <form> of a page: its attributes, its named fields with their values (in
// document order, as a browser submits them), and its submit buttons.
type form struct {
	Action, Method string
	Fields         url.Values
	Buttons        []button
}

type button struct{ ID, Name, Value, Type string }

// field is the value of the form's field name ("" when it has none).
func (f form) field(name string) string { return f.Fields.Get(name) }

// parsePage parses an HTML answer of the hosted page.
func parsePage(t *testing.T, u *url.URL, body string) page {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(body))
	if err != nil {
		t.Fatalf("%s: the page is not HTML: %v", u.Path, err)
	}
	p := page{URL: u}
	var walk func(n *html.Node, f *form)
	walk = func(n *html.Node, f *form) {
		if n.Type == html.ElementNode {
			switch n.Data {
			case "main":
				if s := attr(n, "data-screen"); s != "" {
					p.Screen = s
				}
			case "p":
				if attr(n, "id") == "error" {
					p.Error = strings.TrimSpace(text(n))
				}
			case "form":
				p.Forms = append(p.Forms, form{Action: attr(n, "action"), Method: strings.ToLower(attr(n, "method")), Fields: url.Values{}})
				f = &p.Forms[len(p.Forms)-1]
			case "input":
				if f != nil && attr(n, "name") != "" {
					switch strings.ToLower(attr(n, "type")) {
					case "submit", "button", "image", "reset":
					case "checkbox", "radio":
						if hasAttr(n, "checked") {
							f.Fields.Add(attr(n, "name"), attrOr(n, "value", "on"))
						}
					default:
						f.Fields.Add(attr(n, "name"), attr(n, "value"))
					}
				}
			case "button":
				if f != nil {
					f.Buttons = append(f.Buttons, button{ID: attr(n, "id"), Name: attr(n, "name"), Value: attr(n, "value"),
						Type: strings.ToLower(attrOr(n, "type", "submit"))})
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, f)
		}
	}
	walk(doc, nil)
	return p
}

func attr(n *html.Node, key string) string { return attrOr(n, key, "") }

func attrOr(n *html.Node, key, def string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return def
}

func hasAttr(n *html.Node, key string) bool {
	for _, a := range n.Attr {
		if a.Key == key {
			return true
		}
	}
	return false
}

func text(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return b.String()
}

// formWith is the page's form whose hidden action field is action (and, when channel is not
// "", whose channel is channel); the test fails when the screen has none.
func (p page) formWith(t *testing.T, action, channel string) form {
	t.Helper()
	for _, f := range p.Forms {
		if f.field("action") == action && (channel == "" || f.field("channel") == channel) {
			return f
		}
	}
	t.Fatalf("the %q screen (%s) has no form with action=%s channel=%q; error shown: %q", p.Screen, p.URL.Path, action, channel, p.Error)
	return form{}
}

// hostedBrowser walks the hosted page with a browser without JavaScript, recording each step.
type hostedBrowser struct {
	t      *testing.T
	client *http.Client
	origin string // the OP's scheme://host
	Steps  []pageStep
}

// do sends req as the browser (asking for HTML) and returns the answer with its body read.
func (b *hostedBrowser) do(req *http.Request) (*http.Response, string) {
	b.t.Helper()
	req.Header.Set("Accept", "text/html,application/xhtml+xml")
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		b.t.Fatalf("%s %s: read: %v", req.Method, req.URL.Path, err)
	}
	return resp, string(body)
}

// record adds the step of resp and returns it.
func (b *hostedBrowser) record(resp *http.Response, body string, f *form) pageStep {
	b.t.Helper()
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	s := pageStep{Method: resp.Request.Method, Path: resp.Request.URL.Path, Status: resp.StatusCode, ContentType: mt}
	if f != nil {
		s.FormAction, s.FormMethod = f.Action, f.Method
	}
	if loc := resp.Header.Get("Location"); loc != "" && resp.StatusCode >= 300 && resp.StatusCode < 400 {
		u, err := resp.Request.URL.Parse(loc)
		if err != nil {
			b.t.Fatalf("%s %s: Location does not parse: %v", s.Method, s.Path, err)
		}
		s.Location = u.String()
	}
	if mt == "text/html" && resp.StatusCode == http.StatusOK {
		s.Screen = parsePage(b.t, resp.Request.URL, body).Screen
	}
	b.Steps = append(b.Steps, s)
	return s
}

// open GETs u on the OP and follows its redirects while they stay on the OP, up to the first
// HTML page (returned) or the first redirect that leaves the OP (returned as leave, never
// requested: it is the relying party's callback, and the code it carries is the RP's to spend).
func (b *hostedBrowser) open(u string) (p *page, leave string) {
	b.t.Helper()
	for range 10 {
		req, err := http.NewRequestWithContext(b.t.Context(), http.MethodGet, u, nil)
		if err != nil {
			b.t.Fatal(err)
		}
		resp, body := b.do(req)
		s := b.record(resp, body, nil)
		switch {
		case s.Location != "":
			if !strings.HasPrefix(s.Location, b.origin+"/") {
				return nil, s.Location
			}
			u = s.Location
		case s.Status == http.StatusOK && s.ContentType == "text/html":
			pg := parsePage(b.t, resp.Request.URL, body)
			return &pg, ""
		default:
			b.t.Fatalf("GET %s answered %d %s, want a redirect or an HTML page:\n%.2000s", s.Path, s.Status, s.ContentType, body)
		}
	}
	b.t.Fatalf("more than 10 redirects from %s", u)
	return nil, ""
}

// submit posts f as a browser without JavaScript does, with extra fields set, and expects the
// page's post/redirect/get answer: a 303. It returns where that redirect goes.
func (b *hostedBrowser) submit(p *page, f form, extra map[string]string) string {
	b.t.Helper()
	if f.Method != "post" {
		b.t.Fatalf("the %q screen's form has method %q, want post", p.Screen, f.Method)
	}
	target, err := p.URL.Parse(f.Action)
	if err != nil {
		b.t.Fatalf("the %q screen's form action %q does not parse: %v", p.Screen, f.Action, err)
	}
	vals := url.Values{}
	for k, vs := range f.Fields {
		vals[k] = append([]string(nil), vs...)
	}
	for k, v := range extra {
		vals.Set(k, v)
	}
	// The pressed button: the form's first submit button, sent with its name as a browser does.
	pressed := false
	for _, bt := range f.Buttons {
		if bt.Type == "submit" {
			if bt.Name != "" {
				vals.Set(bt.Name, bt.Value)
			}
			pressed = true
			break
		}
	}
	if !pressed {
		b.t.Fatalf("the %q screen's %s form has no submit button: it needs a script to be sent", p.Screen, f.field("action"))
	}
	req, err := http.NewRequestWithContext(b.t.Context(), http.MethodPost, target.String(), strings.NewReader(vals.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", b.origin)
	resp, body := b.do(req)
	s := b.record(resp, body, &f)
	if s.Status != http.StatusSeeOther || s.Location == "" {
		pg := page{}
		if s.ContentType == "text/html" {
			pg = parsePage(b.t, resp.Request.URL, body)
		}
		b.t.Fatalf("POST %s (action=%s on the %q screen) answered %d %s (screen %q, error %q), want 303",
			s.Path, f.field("action"), p.Screen, s.Status, s.ContentType, pg.Screen, pg.Error)
	}
	return s.Location
}

// inboxCount is how many delivered messages the dev inbox at base holds for to.
func inboxCount(t *testing.T, base, to string) int {
	t.Helper()
	n := 0
	for _, m := range readInboxAt(t, base) {
		if m.To == to && m.SentAt != nil {
			n++
		}
	}
	return n
}

// waitForCodeAfter polls the dev inbox at base until it holds more than before delivered
// messages to `to`, and returns the six-digit code of the newest one.
func waitForCodeAfter(t *testing.T, base, to string, before int) string {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		msgs := readInboxAt(t, base)
		n := 0
		var newest *inboxMessage
		for i, m := range msgs {
			if m.To == to && m.SentAt != nil {
				if newest == nil {
					newest = &msgs[i] // the list is newest first
				}
				n++
			}
		}
		if n > before {
			code := sixDigits.FindStringSubmatch(newest.Text)
			if code == nil {
				t.Fatalf("the dev inbox message to %s has no six-digit code", to)
			}
			return code[1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no new delivered message to %s in the dev inbox after 15s", to)
		}
		time.Sleep(50 * time.Millisecond) // poll interval
	}
}
