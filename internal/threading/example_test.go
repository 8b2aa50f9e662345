package threading_test

import (
	"fmt"
	"strings"
	"time"

	"github.com/letterbox-mail/letterbox/internal/mailmsg"
	"github.com/letterbox-mail/letterbox/internal/threading"
)

// The IMAP layer's part: Messages from the store's rows (the ones the search criteria
// matched), then the answer's numbers or text.
func Example() {
	day := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	msgs := []threading.Message{
		{Seq: 1, UID: 101, InternalDate: day, Date: day, Size: 900,
			Subject: "Lunch?", MessageID: "<1@example.org>",
			From: threading.Address{Name: "Zoë", Mailbox: "zoe", Host: "example.org"}},
		{Seq: 2, UID: 105, InternalDate: day.Add(2 * time.Hour), Size: 400,
			Subject: "Quarterly report", MessageID: "<2@example.org>",
			From: threading.Address{Mailbox: "boss", Host: "example.org"}},
		{Seq: 3, UID: 107, InternalDate: day.Add(time.Hour), Date: day.Add(30 * time.Minute), Size: 1200,
			Subject: "Re: Lunch?", MessageID: "<3@example.net>",
			References: mailmsg.ParseMessageIDs("<1@example.org>"),
			From:       threading.Address{Name: "Adam", Mailbox: "adam", Host: "example.net"}},
	}

	// SORT (REVERSE DATE) and UID SORT (DISPLAYFROM).
	order, err := threading.Sort(msgs, []threading.SortKey{{Criterion: threading.Date, Reverse: true}})
	if err != nil {
		panic(err)
	}
	fmt.Println("* SORT" + numbers(order, func(i int) uint32 { return msgs[i].Seq }))
	order, _ = threading.Sort(msgs, []threading.SortKey{{Criterion: threading.DisplayFrom}})
	fmt.Println("* SORT" + numbers(order, func(i int) uint32 { return msgs[i].UID }))

	// THREAD REFERENCES and UID THREAD ORDEREDSUBJECT.
	fmt.Println("* THREAD " + threading.Format(threading.References(msgs), func(i int) uint32 { return msgs[i].Seq }))
	fmt.Println("* THREAD " + threading.Format(threading.OrderedSubject(msgs), func(i int) uint32 { return msgs[i].UID }))
	// Output:
	// * SORT 2 3 1
	// * SORT 107 105 101
	// * THREAD (1 3)(2)
	// * THREAD (101 107)(105)
}

func numbers(order []int, id func(int) uint32) string {
	var b strings.Builder
	for _, i := range order {
		fmt.Fprintf(&b, " %d", id(i))
	}
	return b.String()
}

func ExampleBaseSubject() {
	fmt.Printf("%q\n", threading.BaseSubject("[list] Re: Fwd: [list]  Meeting\tnotes (fwd)"))
	fmt.Printf("%q\n", threading.BaseSubject("Re: [fwd: Budget]"))
	// Output:
	// "Meeting notes"
	// "Budget"
}
