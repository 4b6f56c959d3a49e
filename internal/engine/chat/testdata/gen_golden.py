# gen_golden.py renders the real chat templates in templates/ with Jinja2
# (the reference implementation, configured as Hugging Face transformers
# configures it: trim_blocks, lstrip_blocks, raise_exception) and writes
# golden.json, the expected output of chat.Render. Run from this directory:
#   python3 gen_golden.py
# Templates whose Jinja raises on a system message (Gemma 1/2, Mistral v0.1/
# v0.2, Phi-3 April) get the system text folded into the first user turn
# first: that folding is PeerLLM's documented convention, the layout is the
# template's.
import json, os
import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

FAMILIES = {
    "chatml-openhermes": ("", "<|im_end|>", None),
    "smollm2": ("", "<|im_end|>", None),
    "qwen2.5": ("", "<|im_end|>", None),
    "llama3": ("<|begin_of_text|>", "<|eot_id|>", None),
    "llama3.2": ("<|begin_of_text|>", "<|eot_id|>", None),
    "llama2": ("<s>", "</s>", None),
    "mistral-v0.2": ("<s>", "</s>", "first"),
    "mistral-v0.3": ("<s>", "</s>", None),
    "gemma2": ("<bos>", "<eos>", "first"),
    "phi3": ("<s>", "<|endoftext|>", None),
    "phi3-april": ("<s>", "<|endoftext|>", "first"),
    "tinyllama": ("<s>", "</s>", None),
}
TOOLS_OK = {"chatml-openhermes", "smollm2", "qwen2.5", "llama3.2"}

SYS = {"role": "system", "content": "You are a helpful assistant"}
CONVS = {
    "one-user": [{"role": "user", "content": "Hi"}],
    "system-user": [SYS, {"role": "user", "content": "Hello"}],
    "multi-turn": [SYS, {"role": "user", "content": "Hello"},
                   {"role": "assistant", "content": "   I am an assistant   "},
                   {"role": "user", "content": "Who are you?\n"}],
    "no-system": [{"role": "user", "content": "Hello"},
                  {"role": "assistant", "content": "Hi there"},
                  {"role": "user", "content": "Another question"}],
    "tool": [{"role": "user", "content": "Weather?"},
             {"role": "assistant", "content": "Let me look."},
             {"role": "tool", "content": "{\"t\": 21}"},
             {"role": "tool", "content": "{\"t\": 22}"},
             {"role": "user", "content": "Thanks"}],
}


def raise_exception(msg):
    raise jinja2.exceptions.TemplateError(msg)


def fold(msgs):
    if not msgs or msgs[0]["role"] != "system":
        return msgs
    rest = [dict(m) for m in msgs[1:]]
    rest[0]["content"] = msgs[0]["content"] + "\n\n" + rest[0]["content"]
    return rest


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    # transformers replaces Jinja's HTML-escaping tojson with plain json.dumps.
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent,
                      separators=separators, sort_keys=sort_keys)


env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
env.globals["raise_exception"] = raise_exception
env.filters["tojson"] = tojson
out = []
for fam, (bos, eos, folding) in FAMILIES.items():
    with open(os.path.join("templates", fam + ".jinja")) as f:
        src = f.read()
    tmpl = env.from_string(src)
    for name, msgs in CONVS.items():
        if name == "tool" and fam not in TOOLS_OK:
            continue
        for gen in (True, False):
            ctx = fold(msgs) if folding else msgs
            want = tmpl.render(messages=ctx, bos_token=bos, eos_token=eos,
                               add_generation_prompt=gen)
            out.append({"template": fam, "conversation": name, "bos": bos,
                        "eos": eos, "add_generation_prompt": gen,
                        "messages": msgs, "want": want})
with open("golden.json", "w") as f:
    json.dump(out, f, indent=1, ensure_ascii=False)
    f.write("\n")
print(len(out), "cases")
