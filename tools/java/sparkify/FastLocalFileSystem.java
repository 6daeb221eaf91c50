package sparkify;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.attribute.PosixFilePermission;
import java.util.EnumSet;
import java.util.Set;

import org.apache.hadoop.fs.LocalFileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.fs.RawLocalFileSystem;
import org.apache.hadoop.fs.permission.FsPermission;

/**
 * Hadoop's local file system, setting permissions through java.nio instead of forking a
 * `chmod` process per file and folder (what RawLocalFileSystem does without Hadoop's native
 * library, which pip's pyspark does not ship), and writing no .crc side files. A
 * LocalFileSystem, since Hadoop code such as S3A's upload buffer casts to that class.
 * Used for file:// when built (`make jars`); see sparkify/session.py.
 */
public class FastLocalFileSystem extends LocalFileSystem {
  public FastLocalFileSystem() {
    super(new NoForkRawLocalFileSystem());
    setWriteChecksum(false);
  }

  /** The raw local file system with chmod done in-process. */
  public static class NoForkRawLocalFileSystem extends RawLocalFileSystem {
    private static final PosixFilePermission[] BITS = {
      PosixFilePermission.OTHERS_EXECUTE, PosixFilePermission.OTHERS_WRITE, PosixFilePermission.OTHERS_READ,
      PosixFilePermission.GROUP_EXECUTE, PosixFilePermission.GROUP_WRITE, PosixFilePermission.GROUP_READ,
      PosixFilePermission.OWNER_EXECUTE, PosixFilePermission.OWNER_WRITE, PosixFilePermission.OWNER_READ,
    };

    @Override
    public void setPermission(Path p, FsPermission permission) throws IOException {
      short mode = permission.toShort();
      Set<PosixFilePermission> set = EnumSet.noneOf(PosixFilePermission.class);
      for (int i = 0; i < BITS.length; i++) {
        if ((mode & (1 << i)) != 0) {
          set.add(BITS[i]);
        }
      }
      Files.setPosixFilePermissions(pathToFile(p).toPath(), set);
    }
  }
}
