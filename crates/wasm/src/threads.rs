//! The thread pool of the threaded build: rayon's workers run in Web Workers (browsers)
//! or `worker_threads` (Node) that the TypeScript loader starts, each instantiating this
//! same module over the same shared memory and then entering [`run_worker`].

use std::sync::Mutex;

use inception_kernels::plan::team;
use wasm_bindgen::prelude::*;

/// Threads the pool handed to the loader and no worker has run yet: the addresses
/// `runWorker` accepts (any other integer from JavaScript is refused, not dereferenced).
static SPAWNED: Mutex<Vec<usize>> = Mutex::new(Vec::new());

#[cfg(not(target_feature = "atomics"))]
compile_error!("the `threads` feature needs -C target-feature=+atomics and shared memory (scripts/build-wasm.sh)");

#[wasm_bindgen]
extern "C" {
    /// Installed by the loader (ts/threads.ts) before the pool is built: starts a worker
    /// that will call `runWorker(thread)`.
    #[wasm_bindgen(js_namespace = globalThis, js_name = __inceptionWasmSpawnWorker)]
    fn spawn_worker(thread: usize);

    /// This thread's `performance.now()` (feature `profile`).
    #[cfg(feature = "profile")]
    #[wasm_bindgen(js_namespace = performance, js_name = now)]
    fn performance_now() -> f64;

    /// Where profile reports go (feature `profile`): one JSON line each.
    #[cfg(feature = "profile")]
    #[wasm_bindgen(js_namespace = console, js_name = log)]
    fn console_log(line: &str);
}

/// Starts the thread team of `threads` threads (`inception_kernels::plan::team`): the
/// calling thread computes its share of every forward itself, as pthreadpool does for
/// XNNPACK (measured: the first task started 0.2 ms after the call with a pool of two
/// workers, 0.04 ms with the caller working), and `threads - 1` workers, which rayon's
/// global pool starts and owns: each runs one job that stays in the team's loop.
#[wasm_bindgen(js_name = initThreadPool)]
pub fn init_thread_pool(threads: usize) -> Result<(), JsError> {
    if threads < 2 {
        return Err(JsError::new(&format!("thread pool: {threads} threads: a pool has at least 2")));
    }
    #[cfg(feature = "profile")]
    inception_kernels::plan::profile::install(inception_kernels::plan::profile::Hooks { now: performance_now, report: |line| console_log(line) });
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads - 1)
        .spawn_handler(|thread| {
            let address = Box::into_raw(Box::new(thread)) as usize;
            SPAWNED.lock().expect("spawned threads").push(address);
            spawn_worker(address);
            Ok(())
        })
        .build_global()
        .map_err(|e| JsError::new(&format!("thread pool: {e}")))?;
    team::install(threads, |work| rayon::spawn(work));
    Ok(())
}

/// A worker's whole life: runs rayon's scheduling loop (and in it the team's) until the
/// pool shuts down.
#[wasm_bindgen(js_name = runWorker)]
pub fn run_worker(thread: usize) -> Result<(), JsError> {
    let mut spawned = SPAWNED.lock().expect("spawned threads");
    let Some(i) = spawned.iter().position(|&a| a == thread) else {
        return Err(JsError::new(&format!("thread pool: {thread} is not a thread waiting for a worker")));
    };
    spawned.swap_remove(i);
    drop(spawned);
    // SAFETY: `thread` is a pointer `init_thread_pool` leaked for one worker (it was in
    // `SPAWNED`), and it was taken out of `SPAWNED` above, so no other call gets it.
    let thread = unsafe { Box::from_raw(thread as *mut rayon::ThreadBuilder) };
    thread.run();
    Ok(())
}

/// Threads a forward uses: the team's, 1 once it is retired (a worker died).
#[wasm_bindgen(js_name = threadCount)]
pub fn thread_count() -> usize {
    inception_kernels::plan::threads()
}

/// The loader saw a worker's thread end: later forwards use the calling thread alone.
#[wasm_bindgen(js_name = abandonThreads)]
pub fn abandon_threads() {
    team::abandon();
}

/// For the fault-injection tests only: the `after`-th task a worker starts from now on
/// panics (`kind` 0) or never returns (`kind` 1).
#[wasm_bindgen(js_name = __injectWorkerFault)]
pub fn inject_worker_fault(kind: u32, after: u32) {
    if kind == 1 {
        team::fault::hang_in_worker_after(after);
    } else {
        team::fault::panic_in_worker_after(after);
    }
}
