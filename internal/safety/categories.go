package safety

// Category names, as in OpenAI's moderation API where one exists.
const (
	Sexual               = "sexual"
	SexualMinors         = "sexual/minors"
	Hate                 = "hate"
	HateThreatening      = "hate/threatening"
	Harassment           = "harassment"
	SelfHarm             = "self-harm"
	SelfHarmIntent       = "self-harm/intent"
	SelfHarmInstructions = "self-harm/instructions"
	Violence             = "violence"
	ViolenceGraphic      = "violence/graphic"
	Illegal              = "illegal"
	IllegalWeapons       = "illegal/weapons"
	IllegalDrugs         = "illegal/drugs"
	IllegalMalware       = "illegal/malware"
	IllegalFraud         = "illegal/fraud"
)

// heads are the categories the linear model scores directly, in weight
// order. The other categories are derived from them (see derive).
var heads = []string{Sexual, SexualMinors, Hate, HateThreatening, Harassment, SelfHarm, Violence, ViolenceGraphic, Illegal, anyHead}

// anyHead is the model's overall unsafe-or-not head: trained on every
// example with a known overall label, it decides whether a text is flagged;
// the category heads decide which categories (see derive).
const anyHead = "any"

const numHeads = 10

// Categories lists every category a Verdict reports, heads first, then the
// derived sub-categories.
func Categories() []string {
	return []string{
		Sexual, SexualMinors, Hate, HateThreatening, Harassment,
		SelfHarm, SelfHarmIntent, SelfHarmInstructions,
		Violence, ViolenceGraphic,
		Illegal, IllegalWeapons, IllegalDrugs, IllegalMalware, IllegalFraud,
	}
}

// OpenAIKeys maps the label keys of OpenAI's moderation evaluation set to
// our category names.
var OpenAIKeys = map[string]string{
	"S": Sexual, "S3": SexualMinors, "H": Hate, "H2": HateThreatening,
	"HR": Harassment, "SH": SelfHarm, "V": Violence, "V2": ViolenceGraphic,
}

func headIndex(name string) int {
	for i, h := range heads {
		if h == name {
			return i
		}
	}
	return -1
}
