// Peer for bench/bench_java_dialect.py: java.util.regex's own cost on the same
// patterns and values. Reads "pattern<TAB>value" lines (backslash escapes as in
// Java source: \t, \n, \\ only) and prints "compile_ns match_ns" per line.
import java.io.*;
import java.nio.charset.StandardCharsets;
import java.util.regex.Pattern;

public class RegexBench {
    static String unescape(String s) {
        return s.replace("\\n", "\n").replace("\\t", "\t").replace("\\\\", "\\");
    }

    public static void main(String[] args) throws IOException {
        int rounds = Integer.parseInt(args[0]);
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        boolean sink = false;
        while ((line = in.readLine()) != null) {
            String[] parts = line.split("\t", 2);
            String p = unescape(parts[0]), v = unescape(parts[1]);
            // Warm up the JIT first: the steady state is what a server sees.
            for (int i = 0; i < rounds; i++) sink ^= Pattern.compile(p).matcher(v).matches();
            long t0 = System.nanoTime();
            for (int i = 0; i < rounds; i++) sink ^= Pattern.compile(p + "").matcher("").matches();
            long t1 = System.nanoTime();
            Pattern compiled = Pattern.compile(p);
            for (int i = 0; i < rounds * 10; i++) sink ^= compiled.matcher(v).matches();
            long t2 = System.nanoTime();
            for (int i = 0; i < rounds * 10; i++) sink ^= compiled.matcher(v).matches();
            long t3 = System.nanoTime();
            System.out.println(((t1 - t0) / rounds) + " " + ((t3 - t2) / (rounds * 10L)));
        }
        if (sink) System.err.print("");
    }
}
