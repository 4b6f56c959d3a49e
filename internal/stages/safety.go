package stages

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/peerllm/peerllm/internal/pipeline"
	"github.com/peerllm/peerllm/internal/safety"
)

// CodeContentPolicy is the error code of a refused prompt, as OpenAI's.
const CodeContentPolicy = "content_policy_violation"

// FinishContentFilter is the finish reason of an answer the screen stopped.
const FinishContentFilter = "content_filter"

// Safety is the content-screen stage. Admit screens every input text (the
// prompt, or each message) with the Checker (the built-in classifier, and the
// optional AI stage for the unsure band) and refuses the request when one is
// flagged; its output filter screens each answer in sentence windows.
type Safety struct {
	// Checker screens prompts; required. Its Classifier also screens answers
	// (the AI stage is for prompts only: answers stream and must not wait).
	Checker *safety.Checker
	// Stream configures the output screen; zero fields take safety's
	// defaults (windows up to 400 bytes).
	Stream safety.StreamOptions
	// Policy is the policy of Checker.Classifier; the zero value means
	// safety.DefaultPolicy(). It decides when a stopped answer is a sure
	// violation (a tripped category at or above its threshold plus the
	// unsure margin): only those strike the host.
	Policy safety.Policy
	// AnswerMargin raises every threshold of Policy by this much (capped
	// at 1) for the answer screen; default 0. The prompt has already passed
	// the screen at the full thresholds, and the classifier over-flags some
	// harmless narrative text (docs/SCREENING.md has the measured trade-off).
	AnswerMargin float64
	Metrics      *Metrics
	Log          *slog.Logger

	once     sync.Once
	answer   *safety.Classifier // the answer screen, built once
	answerP  safety.Policy
	answerEr error
}

// answerScreen builds the answer classifier once.
func (s *Safety) answerScreen() (*safety.Classifier, safety.Policy, error) {
	s.once.Do(func() {
		p := s.Policy
		if p.Thresholds == nil {
			p = safety.DefaultPolicy()
		}
		ap := p
		ap.Thresholds = make(map[string]float64, len(p.Thresholds))
		for c, t := range p.Thresholds {
			ap.Thresholds[c] = min(1, t+max(0, s.AnswerMargin))
		}
		s.answerP = ap
		s.answer, s.answerEr = s.Checker.Classifier.WithPolicy(ap)
	})
	return s.answer, s.answerP, s.answerEr
}

// Name implements pipeline.Stage.
func (s *Safety) Name() string { return "safety" }

// Admit implements pipeline.Stage. It screens each input text and, for a
// conversation, all of them joined. A flagged input is refused with a
// *pipeline.Refusal naming the tripped categories (the union over all
// texts) and no text. If the AI stage fails, the built-in verdict decides.
//
// A prompt counts as safe for strikes only when no text is flagged and none
// scored in the policy's unsure band (the built-in verdict's Unsure, unless
// the AI stage settled it), and an answer window is a sure violation only
// when a tripped category scores at least the unsure margin above its
// threshold: a host is struck only for clear harm nobody asked for. A
// borderline window is still withheld (content_filter) but strikes no one.
func (s *Safety) Admit(ctx context.Context, req *pipeline.Request) (pipeline.NewFilter, error) {
	start := time.Now()
	m := s.Metrics.get()
	defer m.observeAdmit("safety", start)
	var tripped []string
	safe := true
	texts := req.Texts()
	if len(texts) > 1 {
		// Harm split across messages is seen in the whole conversation.
		texts = append(texts, strings.Join(texts, "\n"))
	}
	for _, text := range texts {
		v, err := s.Checker.Check(ctx, text)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			m.aiError()
			if s.Log != nil {
				s.Log.Warn("ai moderation failed; built-in verdict used", "request_id", req.ID, "err", err)
			}
		}
		if v.Flagged {
			for _, c := range v.Tripped {
				if !slices.Contains(tripped, c) {
					tripped = append(tripped, c)
				}
			}
		}
		if v.Unsure && v.Source != safety.SourceAI {
			safe = false
		}
	}
	if len(tripped) > 0 {
		m.refusedAdd(tripped)
		return nil, &pipeline.Refusal{
			Code:       CodeContentPolicy,
			Message:    "The request was refused by the content policy.",
			Categories: tripped,
		}
	}
	cl, pol, err := s.answerScreen()
	if err != nil {
		return nil, fmt.Errorf("answer screen: %w", err)
	}
	opts := s.Stream
	return func() pipeline.Filter {
		return &safetyFilter{st: cl.NewStream(opts), promptSafe: safe, pol: pol, m: m}
	}, nil
}

// safetyFilter screens one answer stream.
type safetyFilter struct {
	st         *safety.Stream
	promptSafe bool
	pol        safety.Policy
	m          *metrics
	stopped    bool
}

func (f *safetyFilter) Write(text string) (string, *pipeline.Stop) {
	rel, v := f.st.Write(text)
	return rel, f.stop(v)
}

func (f *safetyFilter) Close() (string, *pipeline.Stop) {
	rel, v := f.st.Close()
	return rel, f.stop(v)
}

func (f *safetyFilter) stop(v *safety.Verdict) *pipeline.Stop {
	if v == nil || !v.Flagged {
		return nil
	}
	if !f.stopped {
		f.stopped = true
		f.m.stoppedAdd(v.Tripped)
	}
	return &pipeline.Stop{Reason: FinishContentFilter, Categories: slices.Clone(v.Tripped),
		HostFault: f.promptSafe && sure(v, f.pol)}
}

// sure reports whether some tripped category of v scored at least the
// policy's unsure margin above its threshold.
func sure(v *safety.Verdict, p safety.Policy) bool {
	for _, c := range v.Tripped {
		if t, ok := p.Thresholds[c]; ok && v.Scores[c] >= t+p.UnsureMargin {
			return true
		}
	}
	return false
}

// StrikeReason is the strike reason for an answer stopped for categories:
// "safety:" and the categories, never content.
func StrikeReason(categories []string) string {
	r := "safety:" + strings.Join(categories, ",")
	if len(r) > 200 {
		r = r[:200]
	}
	return r
}
