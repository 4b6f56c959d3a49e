package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/peerllm/peerllm/internal/safety"
	"github.com/peerllm/peerllm/internal/testenv"
)

// TestAIModerationStage runs the optional AI moderation stage for real: the
// orchestrator under test (`serve --moderation openai`) sends the prompts its
// built-in screen is unsure about to a second, real `peerllm serve` that
// speaks OpenAI's /v1/moderations format. The second one runs a strict
// policy (every threshold 0.3), so it stands for a moderator that judges
// the borderline text differently: the AI verdict must decide, sure prompts
// must never reach it, and its latency and verdicts must be measured
// separately. (No moderation model runs here; the moderator is our own
// classifier with another policy, reached over real HTTP.)
func TestAIModerationStage(t *testing.T) {
	// The premise: the built-in screen lets the borderline prompt through
	// but is unsure about it, the strict moderator flags it, and the
	// built-in screen is sure about the plain one. Retraining the built-in
	// weights moves scores a little, so the borderline prompt is the first
	// candidate that meets the premise; the test fails only if none does.
	candidates := []string{
		"I got into a fight at school today and the other kid's nose was bleeding.",
		"The knife slipped and there was blood everywhere on the cutting board, I think I need stitches.",
		"I swear I'm going to strangle my printer one of these days.",
		"My brother punched a hole in the wall during an argument. Should I be worried?",
		"The boxer's face was swollen and bloody by the last round.",
		"Can police search my car without a warrant?",
		"My sister and I had a huge fight and she slapped me.",
		"My cat scratched me and now my arm is bleeding a little.",
		"My little brother hit me with a toy truck and I have a bruise.",
		"Two guys started fighting outside the bar and one of them got knocked out.",
	}
	const plain = "How do hunters field dress a deer?"
	cl, err := safety.New(safety.DefaultPolicy())
	if err != nil {
		t.Fatal(err)
	}
	th := map[string]float64{}
	for _, c := range safety.Categories() {
		th[c] = 0.3
	}
	strictPolicy := safety.DefaultPolicy()
	strictPolicy.Thresholds = th
	strictCl, err := cl.WithPolicy(strictPolicy)
	if err != nil {
		t.Fatal(err)
	}
	borderline := ""
	for _, p := range candidates {
		if v := cl.Classify(p); !v.Flagged && v.Unsure && strictCl.Classify(p).Flagged {
			borderline = p
			break
		}
	}
	if borderline == "" {
		t.Fatal("premise: no candidate prompt is unflagged but unsure with the default policy and flagged with the strict one (add one)")
	}
	if v := cl.Classify(plain); v.Flagged || v.Unsure {
		t.Fatalf("premise: built-in verdict on the plain prompt: flagged %v unsure %v", v.Flagged, v.Unsure)
	}

	strict := filepath.Join(t.TempDir(), "strict.json")
	b, _ := json.Marshal(map[string]any{"thresholds": th})
	if err := os.WriteFile(strict, b, 0o600); err != nil {
		t.Fatal(err)
	}
	mod := testenv.StartOrchestrator(t, testenv.OrchestratorOptions{Args: []string{"--safety-policy", strict}})
	t.Setenv("PEERLLM_MODERATION_KEY", mod.CreateKey(t, "moderation-client"))
	o := testenv.StartOrchestrator(t, testenv.OrchestratorOptions{Args: []string{
		"--moderation", "openai", "--moderation-url", mod.API + "/v1", "--moderation-model", "omni-moderation-latest"}})
	key := o.CreateKey(t, "consumer")
	o.StartHost(t, testenv.HostOptions{Name: "h0"})
	o.WaitHosts(t, key, model, 1)

	moderations := func() int { return strings.Count(mod.Logs(), `"path":"/v1/moderations"`) }
	before := moderations()

	// The sure prompt is answered, and the moderator never hears of it.
	r := complete(ctxTimeout(t, time.Minute), t, nil, o.API, "/v1/chat/completions", key, body("/v1/chat/completions", model, plain, false), nil)
	if r.Status != http.StatusOK {
		t.Fatalf("plain prompt: %d %s", r.Status, r.Body)
	}
	if n := moderations() - before; n != 0 {
		t.Fatalf("a sure prompt reached the AI stage (%d calls)", n)
	}

	// The borderline prompt goes to the moderator, whose verdict refuses it,
	// streamed or not.
	for _, stream := range []bool{false, true} {
		r := complete(ctxTimeout(t, time.Minute), t, nil, o.API, "/v1/chat/completions", key, body("/v1/chat/completions", model, borderline, stream), nil)
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if r.Status != http.StatusBadRequest || json.Unmarshal([]byte(r.Body), &e) != nil || e.Error.Code != "content_policy_violation" {
			t.Fatalf("borderline prompt, stream=%v: %d %s (want 400 content_policy_violation from the AI stage)", stream, r.Status, r.Body)
		}
		if strings.Contains(e.Error.Message, "knife") {
			t.Errorf("the refusal quotes the prompt: %q", e.Error.Message)
		}
	}
	// (The moderator logs a request after answering it.)
	testenv.Eventually(t, 10*time.Second, "two AI stage calls", func() error {
		if n := moderations() - before; n != 2 {
			return fmt.Errorf("%d calls", n)
		}
		return nil
	})

	// Each source's latency and verdicts are measured separately.
	for series, want := range map[string]float64{
		`peerllm_safety_check_seconds_count{source="builtin"}`:          3,
		`peerllm_safety_check_seconds_count{source="ai"}`:               2,
		`peerllm_safety_verdicts_total{result="flagged",source="ai"}`:   2,
		`peerllm_safety_verdicts_total{result="safe",source="builtin"}`: 3,
	} {
		if v, err := metricSum(o.API+"/metrics", series); err != nil || v != want {
			t.Errorf("%s = %v (%v), want %v", series, v, err, want)
		}
	}
	for _, line := range strings.Split(o.Logs()+mod.Logs(), "\n") {
		if strings.Contains(line, "knife") || strings.Contains(line, "deer") {
			t.Fatalf("a log line carries prompt text: %s", line)
		}
	}
}
