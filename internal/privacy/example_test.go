package privacy_test

import (
	"fmt"

	"github.com/peerllm/peerllm/internal/privacy"
)

// The request path: anonymize every message, send the result to hosts,
// restore the streamed answer chunk by chunk.
func Example() {
	sc, err := privacy.NewScanner(privacy.Config{})
	if err != nil {
		panic(err)
	}
	ss := sc.NewSession()
	fmt.Println(ss.Anonymize("Hi, I'm John Smith, reach me at john.smith@gmail.com or +44 20 7946 0958."))
	fmt.Println(ss.Anonymize("John's card 4111 1111 1111 1111 was charged twice."))

	// What a host might answer, in pieces that cut the stand-ins. (The first
	// test card number, 4111..., is the user's own here, so the next one
	// stands in: stand-ins never collide with real text.)
	answer := []string{"Dear Al", "ex Car", "ter, we refunded card 5555 5555 ", "5555 4444. Alex, check alex.carter@ex", "ample.com."}
	r := ss.NewRestorer()
	for _, chunk := range answer {
		fmt.Print(r.Write(chunk))
	}
	fmt.Println(r.Flush())
	// Output:
	// Hi, I'm Alex Carter, reach me at alex.carter@example.com or +1 202-555-0100.
	// Alex's card 5555 5555 5555 4444 was charged twice.
	// Dear John Smith, we refunded card 4111 1111 1111 1111. John, check john.smith@gmail.com.
}
