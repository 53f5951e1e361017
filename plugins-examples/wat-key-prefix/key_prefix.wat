;; An lsm extractor written by hand in the WebAssembly text format: it indexes the
;; prefix of a record's key, the part before the first ':' ("users:42" -> text("users")).
;; A key without ':', or starting with ':', gives no term. The value and the options are
;; not read.
;;
;; This is a core module; build.sh embeds the `extractor` world of wit/plugin.wit in it
;; and wraps it as a component (`wasm-tools component embed` + `component new`). The
;; functions below follow the component model's canonical ABI for that world:
;;
;;   extract(key, value, options) -> result<list<term>, string>
;;     params: key ptr/len, value ptr/len, options ptr/len (each string or list is a
;;     pointer and a length in this module's memory, allocated by the host through
;;     cabi_realloc); returns a pointer to the result:
;;       result: tag u8 @0 (0 = ok), list ptr i32 @4, list len i32 @8
;;       term:   tag u8 @0 (0 = text), string ptr i32 @8, string len i32 @12 (16 bytes)
;;
;;   extract-batch(entries, options) -> list<result<list<term>, string>>
;;     params: entries ptr/len (entry: key ptr/len @0/@4, value ptr/len @8/@12,
;;     16 bytes each), options ptr/len; returns a pointer to (list ptr, list len) of
;;     results of 12 bytes each.
;;
;; The terms point into the key the host passed in: memory stays as it is until the
;; host has read the result, then `cabi_post_*` frees everything at once.
(module
  (memory (export "memory") 1)

  ;; 0..1024 unused; 1024..2048: where results are returned; the heap starts at 2048.
  (global $heap_start i32 (i32.const 2048))
  (global $heap (mut i32) (i32.const 2048))

  ;; A bump allocator: `size` bytes aligned to `align`, growing memory as needed.
  (func $alloc (param $size i32) (param $align i32) (result i32)
    (local $p i32) (local $end i32) (local $have i32)
    (local.set $p
      (i32.and
        (i32.add (global.get $heap) (i32.sub (local.get $align) (i32.const 1)))
        (i32.sub (i32.const 0) (local.get $align))))
    (local.set $end (i32.add (local.get $p) (local.get $size)))
    (local.set $have (i32.shl (memory.size) (i32.const 16)))
    (if (i32.gt_u (local.get $end) (local.get $have))
      (then
        (if (i32.eq
              (memory.grow
                (i32.shr_u
                  (i32.add (i32.sub (local.get $end) (local.get $have)) (i32.const 65535))
                  (i32.const 16)))
              (i32.const -1))
          (then (unreachable)))))
    (global.set $heap (local.get $end))
    (local.get $p))

  ;; The host allocates the arguments it passes with this. It never resizes here, so
  ;; the old block is not needed.
  (func (export "cabi_realloc")
    (param $old i32) (param $old_size i32) (param $align i32) (param $new_size i32)
    (result i32)
    (call $alloc (local.get $new_size) (local.get $align)))

  ;; Length of the key's prefix (bytes before the first ':'), or -1 without a ':'.
  (func $prefix_len (param $key i32) (param $len i32) (result i32)
    (local $i i32)
    (block $not_found
      (loop $scan
        (br_if $not_found (i32.ge_u (local.get $i) (local.get $len)))
        (if (i32.eq (i32.load8_u (i32.add (local.get $key) (local.get $i))) (i32.const 58)) ;; ':'
          (then (return (local.get $i))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $scan)))
    (i32.const -1))

  ;; Writes ok(terms) at `$result`: one text term at `$term` for a non-empty prefix,
  ;; else the empty list.
  (func $key_terms (param $result i32) (param $term i32) (param $key i32) (param $len i32)
    (local $n i32)
    (local.set $n (call $prefix_len (local.get $key) (local.get $len)))
    (i32.store8 (local.get $result) (i32.const 0))             ;; ok
    (if (i32.gt_s (local.get $n) (i32.const 0))
      (then
        (i32.store8 (local.get $term) (i32.const 0))           ;; text
        (i32.store offset=8 (local.get $term) (local.get $key))
        (i32.store offset=12 (local.get $term) (local.get $n))
        (i32.store offset=4 (local.get $result) (local.get $term))
        (i32.store offset=8 (local.get $result) (i32.const 1)))
      (else
        (i32.store offset=4 (local.get $result) (i32.const 8)) ;; any aligned pointer
        (i32.store offset=8 (local.get $result) (i32.const 0)))))

  (func (export "lsm:plugin/extract@0.1.0#extract")
    (param $key i32) (param $key_len i32)
    (param $value i32) (param $value_len i32)
    (param $options i32) (param $options_len i32)
    (result i32)
    ;; The result at 1024, its term at 1040.
    (call $key_terms (i32.const 1024) (i32.const 1040) (local.get $key) (local.get $key_len))
    (i32.const 1024))

  (func (export "lsm:plugin/extract@0.1.0#extract-batch")
    (param $entries i32) (param $n i32) (param $options i32) (param $options_len i32)
    (result i32)
    (local $results i32) (local $terms i32) (local $i i32) (local $entry i32)
    (local.set $results (call $alloc (i32.mul (local.get $n) (i32.const 12)) (i32.const 4)))
    (local.set $terms (call $alloc (i32.mul (local.get $n) (i32.const 16)) (i32.const 8)))
    (block $done
      (loop $each
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $entry (i32.add (local.get $entries) (i32.shl (local.get $i) (i32.const 4))))
        (call $key_terms
          (i32.add (local.get $results) (i32.mul (local.get $i) (i32.const 12)))
          (i32.add (local.get $terms) (i32.shl (local.get $i) (i32.const 4)))
          (i32.load (local.get $entry))
          (i32.load offset=4 (local.get $entry)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $each)))
    (i32.store (i32.const 1024) (local.get $results))
    (i32.store offset=4 (i32.const 1024) (local.get $n))
    (i32.const 1024))

  ;; After the host has read a result: free everything.
  (func (export "cabi_post_lsm:plugin/extract@0.1.0#extract") (param i32)
    (global.set $heap (global.get $heap_start)))
  (func (export "cabi_post_lsm:plugin/extract@0.1.0#extract-batch") (param i32)
    (global.set $heap (global.get $heap_start)))
)
