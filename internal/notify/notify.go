// Package notify delivers alert notifications: the message every receiver gets (Alertmanager's
// webhook format, version "4"), and the dispatcher that drains the store's outbox with retries,
// backoff and idempotency keys. Receivers live in notify/webhook, notify/slack,
// notify/alertmanager and notify/file.
package notify

import (
	"errors"
	"fmt"
	"time"
)

// Message is one notification for one group of alerts, in Alertmanager's webhook format
// (version "4"), so existing webhook receivers work unchanged.
type Message struct {
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   int               `json:"truncatedAlerts"`
	Status            string            `json:"status"` // firing or resolved
	Receiver          string            `json:"receiver"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Alerts            []Alert           `json:"alerts"`
}

// Alert is one alert in a Message.
type Alert struct {
	Status       string            `json:"status"` // firing or resolved
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// Annotation names pipewarden sets on every alert.
const (
	AnnotationSummary  = "summary"
	AnnotationRunbook  = "runbook"
	AnnotationAlertID  = "alert_id"
	AnnotationPriority = "priority"
	AnnotationCount    = "count"
	AnnotationState    = "state"
	AnnotationTags     = "tags"
)

// Version is the webhook format version.
const Version = "4"

// PermanentError marks a delivery failure that retrying cannot fix (a 4xx answer, a bad
// configuration); the dispatcher gives up at once.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent wraps err as a PermanentError.
func Permanent(err error) error { return &PermanentError{Err: err} }

// IsPermanent reports whether err is a PermanentError.
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}

// StatusError turns an HTTP status into an error: nil for 2xx, permanent for 4xx except 408
// and 429, retryable otherwise.
func StatusError(receiver string, code int, body []byte) error {
	if code >= 200 && code < 300 {
		return nil
	}
	if len(body) > 200 {
		body = body[:200]
	}
	err := fmt.Errorf("%s answered %d: %s", receiver, code, body)
	if code >= 400 && code < 500 && code != 408 && code != 429 {
		return Permanent(err)
	}
	return err
}
