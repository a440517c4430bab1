package botcheck

import "errors"

// Honeypot is a form field that people never see and bots, which fill in every field, do.
// Render it as a text input named Field, hidden with CSS (not type="hidden", which bots skip),
// with tabindex="-1", autocomplete="off" and aria-hidden="true", and a label telling screen
// readers to leave it empty. Pick a name that browsers do not autofill (not "email", "name" or
// "phone"). It stops naive form-fillers only; pair it with the proof of work.
type Honeypot struct {
	Field string
}

// Check refuses a non-empty value, whitespace included, as bot_check_failed.
func (h Honeypot) Check(value string) error {
	if value != "" {
		return refused("the bot check failed", errors.New("honeypot field "+h.Field+" filled in"))
	}
	return nil
}
