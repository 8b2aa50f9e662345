package threading

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
)

// Thread is one node of a thread tree: a message and its replies.
type Thread struct {
	// Index is the message's index in the []Message given to OrderedSubject or
	// References, or -1 for a dummy: a node without a message that holds siblings
	// together (REFERENCES keeps one only at the top, with two or more children).
	Index int
	// Children are the node's children, in the order THREAD prints them.
	Children []*Thread
}

// Dummy reports whether t has no message.
func (t *Thread) Dummy() bool { return t.Index < 0 }

// threadKey is the order of siblings (RFC 5256 §4): by sent date, then by sequence
// number, then by index; a dummy takes its first child's.
type threadKey struct {
	sent  sentDate
	seq   uint32
	index int
}

// threader holds what both threading algorithms look up of the messages.
type threader struct {
	msgs []Message
	sent []sentDate // sent date of each message, computed once
}

func newThreader(msgs []Message) *threader {
	t := &threader{msgs: msgs, sent: make([]sentDate, len(msgs))}
	for i := range msgs {
		t.sent[i] = msgs[i].sent()
	}
	return t
}

// key returns the sort key of n among its siblings.
func (t *threader) key(n *Thread) threadKey {
	// RFC 5256 §4 step (4): "In the case of a dummy message, sort its children by sent
	// date and then use the first child for the top-level sort."
	for n.Index < 0 && len(n.Children) > 0 {
		n = n.Children[0]
	}
	if n.Index < 0 {
		return threadKey{index: -1}
	}
	return threadKey{sent: t.sent[n.Index], seq: t.msgs[n.Index].Seq, index: n.Index}
}

func (a threadKey) compare(b threadKey) int {
	if c := a.sent.compare(b.sent); c != 0 {
		return c
	}
	if c := cmp.Compare(a.seq, b.seq); c != 0 {
		return c
	}
	return cmp.Compare(a.index, b.index)
}

// sortSiblings orders list by sent date (RFC 5256 §2.2), each dummy by its first child.
func (t *threader) sortSiblings(list []*Thread) {
	if len(list) < 2 {
		return
	}
	slices.SortFunc(list, func(a, b *Thread) int { return t.key(a).compare(t.key(b)) })
}

// OrderedSubject threads msgs with the ORDEREDSUBJECT algorithm (RFC 5256 §4): messages
// with the same base subject (compared with i;ascii-casemap) form one thread, whose first
// message by sent date is the parent of all the others, in sent date order; threads are
// ordered by the sent date of their first message. Ties are broken by sequence number.
func OrderedSubject(msgs []Message) []*Thread {
	t := newThreader(msgs)
	subjects := make([]string, len(msgs))
	for i := range msgs {
		subjects[i] = BaseSubject(msgs[i].Subject)
	}
	foldKeys(subjects) // compared with i;ascii-casemap
	// RFC 5256 §4: "sorts the messages by base subject and then by sent date".
	order := make([]int, len(msgs))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		if c := strings.Compare(subjects[a], subjects[b]); c != 0 {
			return c
		}
		return threadKey{t.sent[a], msgs[a].Seq, a}.compare(threadKey{t.sent[b], msgs[b].Seq, b})
	})
	nodes := make([]Thread, len(msgs))
	kids := make([]*Thread, len(msgs))
	var roots []*Thread
	// "The messages are then split into separate threads, with each thread containing
	// messages with the same base subject text." "The first message of each thread
	// becomes the parent; subsequent messages are children of the first."
	for start := 0; start < len(order); {
		end := start + 1
		for end < len(order) && subjects[order[start]] == subjects[order[end]] {
			end++
		}
		for k := start; k < end; k++ {
			nodes[k] = Thread{Index: order[k]}
			kids[k] = &nodes[k]
		}
		root := &nodes[start]
		root.Children = kids[start+1 : end : end]
		roots = append(roots, root)
		start = end
	}
	// "Finally, the threads are sorted by the sent date of the first message in the
	// thread."
	t.sortSiblings(roots)
	return roots
}

// node is a container of the REFERENCES algorithm: a message (msg >= 0) or a dummy
// (msg < 0), linked to its parent, children and siblings by index in the arena.
type node struct {
	msg         int32
	parent      int32
	first, last int32   // children
	prev, next  int32   // siblings
	thread      *Thread // its Thread, once built
}

const none = -1

// arena holds the containers; nodes[rootNode] is the dummy root of RFC 5256 §4 step (2).
type arena struct {
	nodes []node
}

const rootNode = 0

func (a *arena) add(msg int32) int32 {
	a.nodes = append(a.nodes, node{msg: msg, parent: none, first: none, last: none, prev: none, next: none})
	return int32(len(a.nodes) - 1)
}

// link makes c the last child of p; c has no parent.
func (a *arena) link(p, c int32) {
	n := &a.nodes[c]
	n.parent, n.prev, n.next = p, a.nodes[p].last, none
	if a.nodes[p].last != none {
		a.nodes[a.nodes[p].last].next = c
	} else {
		a.nodes[p].first = c
	}
	a.nodes[p].last = c
}

// unlink removes c from its parent's children.
func (a *arena) unlink(c int32) {
	n := &a.nodes[c]
	p := n.parent
	if p == none {
		return
	}
	if n.prev != none {
		a.nodes[n.prev].next = n.next
	} else {
		a.nodes[p].first = n.next
	}
	if n.next != none {
		a.nodes[n.next].prev = n.prev
	} else {
		a.nodes[p].last = n.prev
	}
	n.parent, n.prev, n.next = none, none, none
}

// createsLoop reports whether making p the parent of c would introduce a loop: RFC 5256
// §4 step (1)(A): "before making message A the parent of B, make sure that A is not a
// descendent of B".
func (a *arena) createsLoop(p, c int32) bool {
	for x := p; x != none; x = a.nodes[x].parent {
		if x == c {
			return true
		}
	}
	return false
}

// splice replaces the dummy d among its siblings by its children, in their order
// (RFC 5256 §4 step (3): "promote its children to the current level").
func (a *arena) splice(d int32) {
	dn := a.nodes[d]
	p := dn.parent
	for c := dn.first; c != none; c = a.nodes[c].next {
		a.nodes[c].parent = p
	}
	first, last := dn.first, dn.last
	if dn.prev != none {
		a.nodes[dn.prev].next = first
	} else {
		a.nodes[p].first = first
	}
	a.nodes[first].prev = dn.prev
	if dn.next != none {
		a.nodes[dn.next].prev = last
	} else {
		a.nodes[p].last = last
	}
	a.nodes[last].next = dn.next
	a.nodes[d] = node{msg: dn.msg, parent: none, first: none, last: none, prev: none, next: none}
}

// prune is RFC 5256 §4 step (3) over the children of p, each subtree pruned before its
// root is looked at.
func (a *arena) prune(p int32) {
	for c := a.nodes[p].first; c != none; {
		next := a.nodes[c].next
		a.prune(c)
		if n := &a.nodes[c]; n.msg < 0 {
			switch {
			case n.first == none:
				// "If it is a dummy message with NO children, delete it."
				a.unlink(c)
			case p != rootNode || a.nodes[n.first].next == none:
				// "If it is a dummy message with children, delete it, but promote its
				// children to the current level. [...] Do not promote the children if
				// doing so would make them children of the root, unless there is only
				// one child."
				a.splice(c)
			}
		}
		c = next
	}
}

// References threads msgs with the REFERENCES algorithm (RFC 5256 §4): parent/child
// links from the References header field (or the first msg-id of In-Reply-To when it
// has none), loops refused, dummies for referenced messages that are not in msgs, dummies
// pruned, top-level threads with the same base subject gathered, and siblings ordered by
// sent date. The result is the children of the RFC's dummy root, in order; a Thread with
// Index -1 there is a surviving dummy.
//
// msgs need not be in sequence order: step (1) takes them by ascending Seq, as the RFC's
// "first (lowest sequence number) message" rule for duplicate Message-IDs requires.
func References(msgs []Message) []*Thread {
	t := newThreader(msgs)
	order := make([]int32, len(msgs))
	for i := range order {
		order[i] = int32(i)
	}
	if !slices.IsSortedFunc(order, func(a, b int32) int { return compareSeq(msgs, int(a), int(b)) }) {
		slices.SortFunc(order, func(a, b int32) int { return compareSeq(msgs, int(a), int(b)) })
	}

	a := &arena{nodes: make([]node, 0, len(msgs)+len(msgs)/4+1)}
	a.add(none) // the root
	ids := make(map[string]int32, len(msgs))
	msgNode := make([]int32, len(msgs))
	// RFC 5256 §4 step (1)(A): "If a message does not have a Message-ID header line, or
	// the Message-ID header line does not contain a valid Message ID, then assign a
	// unique Message ID to this message. If two or more messages have the same Message
	// ID, then only use that Message ID in the first (lowest sequence number) message,
	// and assign a unique Message ID to each of the subsequent messages with a duplicate
	// of that Message ID." A unique Message ID is a node outside the id table.
	for _, i := range order {
		n := a.add(i)
		msgNode[i] = n
		if id := normalizeMessageID(msgs[i].MessageID); id != "" {
			if _, dup := ids[id]; !dup {
				ids[id] = n
			}
		}
	}
	// "If no message can be found with a given Message ID, create a dummy message with
	// this ID. Use this dummy message for all subsequent references to this ID."
	lookup := func(id string) int32 {
		if n, ok := ids[id]; ok {
			return n
		}
		n := a.add(none)
		ids[id] = n
		return n
	}
	for _, i := range order {
		m := &msgs[i]
		c := msgNode[i]
		refs := m.References
		if !hasValidID(refs) {
			// "If a message does not contain a References header line, or the
			// References header line does not contain any valid Message IDs, then
			// use the first (if any) valid Message ID of the In-Reply-To header line
			// as its only reference."
			refs = nil
			for k, id := range m.InReplyTo {
				if normalizeMessageID(id) != "" {
					refs = m.InReplyTo[k : k+1]
					break
				}
			}
		}
		last := int32(none)
		for _, id := range refs {
			id = normalizeMessageID(id)
			if id == "" {
				continue
			}
			r := lookup(id)
			if r == c {
				continue // its own Message-ID: see the package's implementation notes
			}
			// (A) "Make the first reference the parent of the second [...], the second
			// the parent of the third [...]". "If a message already has a parent,
			// don't change the existing link." "Do not create a parent/child link if
			// creating that link would introduce a loop."
			if last != none && a.nodes[r].parent == none && !a.createsLoop(last, r) {
				a.link(last, r)
			}
			last = r
		}
		// (B) "Create a parent/child link between the last reference (or NIL if there
		// are no references) and the current message. If the current message already
		// has a parent, [...] break the current parent/child link before creating the
		// new correct one. As in step 1.A, do not create the parent/child link if
		// creating that link would introduce a loop."
		a.unlink(c)
		if last != none && !a.createsLoop(last, c) {
			a.link(last, c)
		}
	}

	// (2) "Gather together all of the messages that have no parents and make them all
	// children (siblings of one another) of a dummy parent (the "root")."
	for n := int32(1); n < int32(len(a.nodes)); n++ {
		if a.nodes[n].parent == none {
			a.link(rootNode, n)
		}
	}
	// (3) Prune dummy messages from the thread tree.
	a.prune(rootNode)

	roots := t.build(a)

	// (4) "Sort the messages under the root (top-level siblings only) by sent date as
	// described in section 2.2. In the case of a dummy message, sort its children by
	// sent date and then use the first child for the top-level sort."
	for _, r := range roots {
		if r.Dummy() {
			t.sortSiblings(r.Children)
		}
	}
	t.sortSiblings(roots)

	roots = t.gatherSubjects(roots)

	// (6) "Traverse the messages under the root and sort each set of siblings by sent
	// date. Traverse the messages in such a way that the "youngest" set of siblings are
	// sorted first, and the "oldest" set of siblings are sorted last (grandchildren are
	// sorted before children, etc). In the case of a dummy message (which can only
	// occur with top-level siblings), use the sent date of the first child."
	for _, r := range roots {
		t.sortTree(r)
	}
	t.sortSiblings(roots)
	return roots
}

// hasValidID reports whether ids holds a msg-id that is one.
func hasValidID(ids []string) bool {
	for _, id := range ids {
		if normalizeMessageID(id) != "" {
			return true
		}
	}
	return false
}

// build turns the pruned containers under the root into Threads, allocating them all at
// once: one Thread per container and one backing array for every Children slice.
func (t *threader) build(a *arena) []*Thread {
	// Every container still linked is under the root; the others were pruned.
	count := 0
	for n := 1; n < len(a.nodes); n++ {
		if a.nodes[n].parent != none {
			count++
		}
	}
	threads := make([]Thread, count)
	kids := make([]*Thread, count)
	used := 0
	// children lays out the children of p in kids and returns them, with a capacity
	// that makes an append (step 5) copy rather than overwrite a neighbour.
	children := func(p int32) []*Thread {
		start := used
		for c := a.nodes[p].first; c != none; c = a.nodes[c].next {
			th := &threads[used]
			th.Index = int(a.nodes[c].msg)
			kids[used] = th
			a.nodes[c].thread = th
			used++
		}
		return kids[start:used:used]
	}
	roots := children(rootNode)
	// Breadth first, so that no recursion is needed: containers in the order their
	// Threads were laid out.
	queue := make([]int32, 0, count)
	for c := a.nodes[rootNode].first; c != none; c = a.nodes[c].next {
		queue = append(queue, c)
	}
	for k := 0; k < len(queue); k++ {
		c := queue[k]
		th := a.nodes[c].thread
		if a.nodes[c].first == none {
			continue
		}
		th.Children = children(c)
		for g := a.nodes[c].first; g != none; g = a.nodes[g].next {
			queue = append(queue, g)
		}
	}
	return roots
}

// subjectOf returns the thread subject of a top-level thread (RFC 5256 §4 step
// (5)(B)(i): "the base subject from either the current message or its first child if
// the current message is a dummy") and whether that message is a reply or forward.
func (t *threader) subjectOf(r *Thread) (string, bool) {
	for r.Index < 0 && len(r.Children) > 0 {
		r = r.Children[0]
	}
	if r.Index < 0 {
		return "", false
	}
	return baseSubject(t.msgs[r.Index].Subject)
}

// gatherSubjects is RFC 5256 §4 step (5): top-level threads with the same base subject
// are merged. roots is in step (4)'s order; the result keeps the threads left in it.
func (t *threader) gatherSubjects(roots []*Thread) []*Thread {
	// (A) "Create a table for associating base subjects with messages, called the
	// subject table." It maps the i;ascii-casemap key of a subject ("Subject
	// comparisons are case-insensitive") to a position in roots.
	table := make(map[string]int, len(roots))
	keys := make([]string, len(roots))
	reply := make([]bool, len(roots))
	for i, r := range roots {
		keys[i], reply[i] = t.subjectOf(r)
	}
	foldKeys(keys)
	// (B) "Populate the subject table with one message per base subject."
	for i, r := range roots {
		key := keys[i]
		// (ii) "If the thread subject is empty, skip this message."
		if key == "" {
			continue
		}
		j, ok := table[key]
		switch {
		case !ok:
			// (iv) "If there is no message in the subject table with the thread
			// subject, add the current message and the thread subject to the
			// subject table."
			table[key] = i
		case !roots[j].Dummy() && (r.Dummy() || reply[j] && !reply[i]):
			// "Otherwise, if the message in the subject table is not a dummy, AND
			// either of the following criteria are true: The current message is a
			// dummy, OR The message in the subject table is a reply or forward and
			// the current message is not. then replace the message in the subject
			// table with the current message."
			table[key] = i
		}
	}
	// (C) "Merge threads with the same thread subject."
	merged := false
	for i := range roots {
		r := roots[i]
		if keys[i] == "" {
			continue
		}
		j := table[keys[i]]
		// (iv) "If the message in the subject table is the current message, skip this
		// message." (A position the table points to keeps its subject when a new
		// dummy takes it over.)
		if j == i {
			continue
		}
		merged = true
		other := roots[j]
		switch {
		case other.Dummy() && r.Dummy():
			// "If both messages are dummies, append the current message's children
			// to the children of the message in the subject table (the children of
			// both messages become siblings), and then delete the current message."
			other.Children = append(other.Children, r.Children...)
		case other.Dummy():
			// "If the message in the subject table is a dummy and the current
			// message is not, make the current message a child of the message in
			// the subject table (a sibling of its children)."
			other.Children = append(other.Children, r)
		case reply[i] && !reply[j]:
			// "If the current message is a reply or forward and the message in the
			// subject table is not, make the current message a child of the message
			// in the subject table (a sibling of its children)."
			other.Children = append(other.Children, r)
		default:
			// "Otherwise, create a new dummy message and make both the current
			// message and the message in the subject table children of the dummy.
			// Then replace the message in the subject table with the dummy message."
			roots[j] = &Thread{Index: -1, Children: []*Thread{other, r}}
		}
		roots[i] = nil
	}
	if !merged {
		return roots
	}
	return slices.DeleteFunc(roots, func(r *Thread) bool { return r == nil })
}

// sortTree sorts every set of siblings under r, grandchildren before children.
func (t *threader) sortTree(r *Thread) {
	for _, c := range r.Children {
		if len(c.Children) > 0 {
			t.sortTree(c)
		}
	}
	t.sortSiblings(r.Children)
}

// Format returns the THREAD response data for threads (RFC 5256 §4, "thread-list"), as
// in "(2)(3 6 (4 23)(44 7 96))": id gives the number to print for the message at an
// index, its sequence number or, for UID THREAD, its UID. The wire layer writes
// "* THREAD " and this. A dummy is printed as parentheses around its children; a dummy
// without children prints nothing.
func Format(threads []*Thread, id func(index int) uint32) string {
	return string(AppendFormat(nil, threads, id))
}

// AppendFormat appends what Format returns to dst.
func AppendFormat(dst []byte, threads []*Thread, id func(index int) uint32) []byte {
	for _, t := range threads {
		dst = appendThread(dst, t, id)
	}
	return dst
}

// appendThread writes one thread-list:
//
//	thread-list    = "(" (thread-members / thread-nested) ")"
//	thread-members = nz-number *(SP nz-number) [SP thread-nested]
//	thread-nested  = 2*thread-list
func appendThread(dst []byte, t *Thread, id func(int) uint32) []byte {
	if t.Dummy() && len(t.Children) == 0 {
		return dst
	}
	dst = append(dst, '(')
	space := false
	for {
		if !t.Dummy() {
			if space {
				dst = append(dst, ' ')
			}
			dst = strconv.AppendUint(dst, uint64(id(t.Index)), 10)
			space = true
		}
		if len(t.Children) != 1 {
			break
		}
		// A single child continues the thread-members.
		t = t.Children[0]
	}
	if len(t.Children) > 1 {
		if space {
			dst = append(dst, ' ')
		}
		for _, c := range t.Children {
			dst = appendThread(dst, c, id)
		}
	}
	return append(dst, ')')
}
