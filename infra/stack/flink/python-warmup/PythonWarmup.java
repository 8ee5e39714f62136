// Imports the Python modules of thread-mode UDFs when a TaskManager starts, instead of when its first
// Python operator opens. The embedded interpreter is one per JVM (pemja MULTI_THREAD: one main
// interpreter, modules shared), so what is imported here is already loaded when a task starts.
// Why: on a fresh TaskManager the first Python operator imports PyFlink's runtime (apache_beam and
// pandas among it), about 1 s idle and 5 s on two busy cores, and a failover onto that TaskManager
// waits for it (docs/stack.md#recovery).
// A Java agent: -javaagent:python-warmup.jar=<module>,<module>...@<python executable>, with no shell
// metacharacters (Flink's scripts eval the options). The search path is the PYTHONPATH the
// TaskManager runs with, as PyFlink's own interpreter configuration uses.
// Best effort: a failure is printed and the TaskManager runs as it would without the agent.
package adagg.warmup;

import java.lang.instrument.Instrumentation;

import pemja.core.PythonInterpreter;
import pemja.core.PythonInterpreterConfig;

public final class PythonWarmup {
    private PythonWarmup() {}

    public static void premain(String args, Instrumentation unused) {
        int at = args == null ? -1 : args.lastIndexOf('@');
        if (at <= 0 || at == args.length() - 1) {
            System.err.println("python-warmup: expected <module>,<module>...@<python executable>, got: " + args);
            return;
        }
        String[] modules = args.substring(0, at).split(",");
        String python = args.substring(at + 1);
        Thread thread = new Thread(() -> warm(python, modules), "python-warmup");
        thread.setDaemon(true);
        thread.start();
    }

    private static void warm(String python, String[] modules) {
        long start = System.nanoTime();
        try {
            PythonInterpreterConfig config = PythonInterpreterConfig.newBuilder()
                    .setExcType(PythonInterpreterConfig.ExecType.MULTI_THREAD)
                    .setPythonExec(python)
                    .addPythonPaths(System.getenv().getOrDefault("PYTHONPATH", ""))
                    .build();
            PythonInterpreter interpreter = new PythonInterpreter(config);
            try {
                for (String module : modules) {
                    interpreter.exec("import " + module.strip());
                }
            } finally {
                interpreter.close();
            }
            System.out.printf("python-warmup: imported %s in %d ms%n",
                    String.join(", ", modules), (System.nanoTime() - start) / 1_000_000);
        } catch (Throwable e) {
            System.err.println("python-warmup: failed, the first Python operator will import them: " + e);
        }
    }
}
