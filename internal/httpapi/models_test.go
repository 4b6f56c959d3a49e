package httpapi_test

import (
	"net/http"
	"testing"
)

// TestRetrieveModel: GET /v1/models/{id}, as OpenAI clients' models.retrieve
// calls it.
func TestRetrieveModel(t *testing.T) {
	e := newEnv(t)
	get := func(path string) *http.Response {
		req, _ := http.NewRequest("GET", e.srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+e.key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	resp := get("/v1/models/tiny")
	m := decode[struct {
		ID, Object    string
		ContextLength int `json:"context_length"`
	}](t, resp)
	if resp.StatusCode != 200 || m.ID != "tiny" || m.Object != "model" || m.ContextLength != 512 {
		t.Fatalf("%d %+v", resp.StatusCode, m)
	}
	resp = get("/v1/models/nope")
	er := decode[struct{ Error struct{ Code, Param string } }](t, resp)
	if resp.StatusCode != 404 || er.Error.Code != "model_not_found" || er.Error.Param != "model" {
		t.Fatalf("%d %+v", resp.StatusCode, er)
	}
}
