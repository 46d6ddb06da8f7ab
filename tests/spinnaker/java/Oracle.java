// The JDK as a test oracle for selectors_lib's Java dialect (tests/spinnaker).
// Reads requests from stdin, one per line, every string as the hex of its UTF-16
// code units (so any character, line terminators included, survives):
//   M <pattern> <value>  -> "1" / "0" (Pattern.compile(p).matcher(v).matches()),
//                           "E" when the pattern throws PatternSyntaxException
//   L <value>            -> hex of value.toLowerCase(Locale.ROOT)
//   I <a> <b>            -> "1" / "0" (a.equalsIgnoreCase(b))
// and answers one line per request, flushing after each blank input line.
import java.io.*;
import java.nio.charset.StandardCharsets;
import java.util.*;
import java.util.regex.*;

public class Oracle {
    static String decode(String hex) {
        char[] out = new char[hex.length() / 4];
        for (int i = 0; i < out.length; i++) {
            out[i] = (char) Integer.parseInt(hex.substring(4 * i, 4 * i + 4), 16);
        }
        return new String(out);
    }

    static String encode(String s) {
        StringBuilder sb = new StringBuilder(s.length() * 4);
        for (int i = 0; i < s.length(); i++) sb.append(String.format("%04x", (int) s.charAt(i)));
        return sb.toString();
    }

    public static void main(String[] args) throws IOException {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.US_ASCII));
        PrintWriter out = new PrintWriter(new BufferedWriter(new OutputStreamWriter(System.out, StandardCharsets.US_ASCII)));
        Map<String, Object> cache = new HashMap<>();
        String line;
        while ((line = in.readLine()) != null) {
            if (line.isEmpty()) { out.flush(); continue; }
            String[] parts = line.split(" ", -1);
            switch (parts[0]) {
                case "M": {
                    Object compiled = cache.get(parts[1]);
                    if (compiled == null) {
                        if (cache.size() > 10000) cache.clear();
                        try {
                            compiled = Pattern.compile(decode(parts[1]));
                        } catch (PatternSyntaxException e) {
                            compiled = "E";
                        }
                        cache.put(parts[1], compiled);
                    }
                    if (compiled instanceof Pattern) {
                        boolean ok;
                        try {
                            ok = ((Pattern) compiled).matcher(decode(parts[2])).matches();
                        } catch (StackOverflowError e) {
                            out.println("S");
                            break;
                        }
                        out.println(ok ? "1" : "0");
                    } else {
                        out.println("E");
                    }
                    break;
                }
                case "L":
                    out.println(encode(decode(parts[1]).toLowerCase(Locale.ROOT)));
                    break;
                case "I":
                    out.println(decode(parts[1]).equalsIgnoreCase(decode(parts[2])) ? "1" : "0");
                    break;
                default:
                    out.println("?");
            }
        }
        out.flush();
    }
}
